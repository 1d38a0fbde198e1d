/**
 * The event contract as JSON Schema (draft 2020-12), generated from the zod schemas, for
 * consumers outside TypeScript. It describes what a reader of the current major version accepts
 * (read strength): unknown keys allowed, open vocabularies any string. A consumer checks `type`
 * first and treats an event of a type it does not know as opaque (a newer minor version may add
 * types); events written under major version 1 differ as docs/events.md lists.
 * Committed as schemas/json/attest-event.schema.json; a unit spec keeps the file current.
 */
import { z } from 'zod';
import { AttestEventReadSchema, EVENT_TYPES, SCHEMA_MAJOR, SCHEMA_VERSION } from './events.ts';
import { EVENT_ERROR_CODES, STAGES } from './vocabulary.ts';

export function eventContractJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(AttestEventReadSchema, { target: 'draft-2020-12', unrepresentable: 'any' });
  return {
    ...generated,
    $id: `https://attest.dev/schemas/attest-event.v${SCHEMA_MAJOR}.schema.json`,
    title: `Attest event, contract ${SCHEMA_VERSION} (read strength)`,
    description: 'One sealed Attest event as stored in the log. See docs/events.md for versions, upcasting and the chain hash.',
    'x-attest': {
      schemaVersion: SCHEMA_VERSION,
      eventTypes: EVENT_TYPES,
      stages: Object.keys(STAGES),
      errorCodes: EVENT_ERROR_CODES,
    },
  };
}
