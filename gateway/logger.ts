import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout belongs to the stdio transport). Header values and keys
 * that can carry secrets are redacted at the logger, so a careless binding cannot leak them.
 */
export function createLogger(level: string = process.env['ATTEST_LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'attest' },
      redact: { paths: ['authorization', '*.authorization', 'headers', '*.headers', 'apiKey', '*.apiKey', 'token', '*.token'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
