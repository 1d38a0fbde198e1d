/**
 * What the event log needs from a logger: the subset of pino's API it calls, so a pino logger
 * (or a child of it) can be passed as is.
 */
export interface EventLogLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

const ignore = (): void => {};

export const silentLogger: EventLogLogger = Object.freeze({ info: ignore, warn: ignore, error: ignore });
