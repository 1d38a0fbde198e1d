/**
 * Spec fixture (merkle-store.int.spec.ts): a process that appends synthetic leaves to a store
 * without end — background writes every 64 leaves, sync() every `syncEvery` — and prints
 * `synced <size>` after each sync, until it is killed.
 *
 *   node --conditions=attest-source eventlog/merkle/merkle-writer.fixture.ts <dir> <syncEvery>
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MerkleStore } from './merkle-store.ts';
import { syntheticLeaf } from './spec-support.ts';

const [dir, syncEveryText] = process.argv.slice(2);
if (dir === undefined || syncEveryText === undefined) throw new Error('usage: merkle-writer.fixture.ts <dir> <syncEvery>');
const syncEvery = Number(syncEveryText);
const store = await MerkleStore.open(dir, { flushLeaves: 64 });
process.stdout.write(`opened ${store.size}\n`);
let nextSync = store.size + syncEvery;
for (;;) {
  for (let k = 0; k < 97; k++) store.append(syntheticLeaf(store.size));
  if (store.size >= nextSync) {
    await store.sync();
    process.stdout.write(`synced ${store.size}\n`);
    nextSync = store.size + syncEvery;
  }
  await yieldToLoop();
}
