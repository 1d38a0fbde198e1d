/** The tamper suite (spec-support.ts) on real file logs: segment files rewritten with valid checksums. */
import { join } from 'node:path';
import { openFileLogReader } from '../file/file-reader.ts';
import { tempDir } from '../file/spec-support.ts';
import { materializeFile, testEvidenceTampering } from './spec-support.ts';

testEvidenceTampering('file', async (t, records) => {
  const dir = join(await tempDir(t, 'attest-tamper-'), 'log');
  await materializeFile(dir, records);
  return () => openFileLogReader(dir);
});
