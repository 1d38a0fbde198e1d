import { v7 as uuidv7 } from 'uuid';

/** Event ids are UUIDv7: time-ordered, so log order and id order agree closely. */
export function newEventId(): string {
  return uuidv7();
}

/** `occurredAt`: the gateway clock, ms precision, UTC. */
export function nowIso(): string {
  return new Date().toISOString();
}
