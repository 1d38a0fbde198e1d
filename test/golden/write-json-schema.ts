/** Writes schemas/json/attest-event.schema.json from the zod schemas: `npm run schemas:json`. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eventContractJsonSchema } from '#schemas';

const file = path.join(import.meta.dirname, '..', '..', 'schemas', 'json', 'attest-event.schema.json');
await mkdir(path.dirname(file), { recursive: true });
await writeFile(file, `${JSON.stringify(eventContractJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${file}\n`);
