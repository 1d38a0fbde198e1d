/**
 * A writer in its own process, for tests of locking, crashes and cross-process reading.
 *   hold   <dir> <n>              append n events, print `ready <size>`, then wait to be killed
 *   stream <dir> <n> <everyMs>    append n events one at a time, print `ack <index> <id>` each, close
 *   flood  <dir>                  append from 16 concurrent callers until killed, print `ack <index> <id>` each
 */
import { openFileLog } from './file-log.ts';
import { sampleDraft } from '../sample-drafts.ts';

const [mode, dir, arg1, arg2] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: writer-process.fixture.ts hold|stream|flood <dir> …');
const log = await openFileLog({ dir, segmentBytes: 64 * 1024 });
const say = (line: string): void => void process.stdout.write(`${line}\n`);

switch (mode) {
  case 'hold': {
    for (let i = 0; i < Number(arg1); i++) await log.append([sampleDraft(`held-${i % 3}`, i)]);
    say(`ready ${log.size()}`);
    setInterval(() => undefined, 60_000);
    break;
  }
  case 'stream': {
    for (let i = 0; i < Number(arg1); i++) {
      const [stored] = await log.append([sampleDraft('streamed', i)]);
      say(`ack ${stored?.position.index} ${stored?.event.id}`);
      await new Promise((resolve) => setTimeout(resolve, Number(arg2)));
    }
    await log.close();
    say('done');
    break;
  }
  case 'flood': {
    const caller = async (c: number): Promise<void> => {
      for (let i = 0; ; i++) {
        const [stored] = await log.append([sampleDraft(`flood-${c}`, i)]);
        say(`ack ${stored?.position.index} ${stored?.event.id}`);
      }
    };
    say('ready 0');
    await Promise.all(Array.from({ length: 16 }, (_, c) => caller(c)));
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
