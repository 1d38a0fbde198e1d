/**
 * The `attest` CLI as an operator runs it: a real process, real files.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { hashApiKey } from '#gateway';
import { openFileLog } from '#eventlog';
import { newEventId, nowIso, SYSTEM_PRINCIPAL, SCHEMA_VERSION } from '#schemas';
import { createInterface } from 'node:readline';
import { runCli } from '../test/harness/cli.ts';
import type { CliResult } from '../test/harness/cli.ts';

const CLI = path.join(import.meta.dirname, 'attest.ts');
const FIXTURE = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'upstream', 'server.ts');
const KEY = 'atk_cli_test_key_0123456789';

function run(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runCli(args, options);
}

describe('attest CLI', () => {
  let dir: string;
  let configFile: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-cli-'));
    configFile = path.join(dir, 'attest.yaml');
    await writeFile(configFile, [
      'log:',
      '  backend: file',
      '  dir: log',
      'auth:',
      '  keys:',
      `    - { id: cli, hash: "${hashApiKey(KEY)}", tenant: t1 }`,
      'upstreams:',
      '  fixture:',
      '    transport: stdio',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(FIXTURE)}, "--stdio"]`,
      '',
    ].join('\n'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('--help lists every command, and each command has its own --help', async () => {
    const top = await run(['--help']);
    assert.equal(top.code, 0);
    for (const name of ['gateway', 'start', 'events', 'verify', 'keys']) {
      assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'));
      const own = await run([name, '--help']);
      assert.equal(own.code, 0);
      assert.match(own.stdout, new RegExp(`Usage: attest ${name}`));
    }
  });

  it('an unknown command or option exits 2 with the usage', async () => {
    assert.equal((await run(['frobnicate'])).code, 2);
    const bad = await run(['verify', '--config', configFile, '--bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Usage: attest verify/);
  });

  it('an invalid config exits 2 naming the key path', async () => {
    const broken = path.join(dir, 'broken.yaml');
    await writeFile(broken, 'log: { backend: file, dir: x }\nupstreams:\n  a: { transport: stdio, args: [1] }\n');
    const result = await run(['gateway', '--config', broken]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /upstreams\.a\.command/);
    assert.match(result.stderr, /upstreams\.a\.args\[0\]/);
  });

  it('keys new prints a key and its hash; keys hash agrees', async () => {
    const created = await run(['keys', 'new']);
    assert.equal(created.code, 0);
    const key = /key:\s+(\S+)/.exec(created.stdout)?.[1] ?? '';
    const hash = /hash:\s+(\S+)/.exec(created.stdout)?.[1] ?? '';
    assert.match(key, /^atk_/);
    assert.equal(hash, hashApiKey(key));
    const hashed = await run(['keys', 'hash'], { input: `${key}\n` });
    assert.equal(hashed.stdout.trim(), hash);
  });

  it('keys hash refuses empty or whitespace-only input: exit 2, no hash, says to pipe it in', async () => {
    for (const input of ['', '\n', '  \t\r\n  \n']) {
      const result = await run(['keys', 'hash'], { input });
      assert.equal(result.code, 2, `input ${JSON.stringify(input)}: ${result.stdout}${result.stderr}`);
      assert.equal(result.stdout, '', `no hash printed for ${JSON.stringify(input)}`);
      assert.match(result.stderr, /^attest keys: hash needs the key on stdin and got nothing \(empty or only whitespace\): pipe it in/);
    }
  });

  it('gateway --stdio serves one agent over stdin/stdout; events and verify read what it wrote; a flipped byte fails verify', { timeout: 120_000 }, async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: ['--conditions=attest-source', CLI, 'gateway', '--stdio', '--config', configFile], env: { ...process.env, ATTEST_API_KEY: KEY, ATTEST_LOG_LEVEL: 'warn' }, stderr: 'pipe' });
    const client = new Client({ name: 'cli-stdio-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'fixture__echo'));
      const result = await client.callTool({ name: 'fixture__echo', arguments: { text: 'over stdio' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'over stdio' }]);
    } finally {
      await client.close();
    }
    // The gateway process ends when its stdin closes; give it a moment to record SessionClosed.
    for (let i = 0; i < 50; i++) {
      const events = await run(['events', '--config', configFile]);
      if (events.stdout.includes('SessionClosed')) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const human = await run(['events', '--config', configFile]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /RequestReceived\s+session-\S+ #\d+ agent tools\/call → fixture echo/);
    const json = await run(['events', '--config', configFile, '--json']);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: { type: string; stream: string } });
    assert.ok(lines.some((l) => l.event.type === 'GatewayStarted'));
    const stream = lines.find((l) => l.event.type === 'SessionOpened')?.event.stream ?? '';
    const one = await run(['events', '--config', configFile, '--json', '--stream', stream]);
    const oneLines = one.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: { stream: string } });
    assert.ok(oneLines.length > 3 && oneLines.every((l) => l.event.stream === stream));

    const good = await run(['verify', '--config', configFile]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^ok: \d+ events in \d+ streams/);

    const logDir = path.join(dir, 'log');
    const segment = (await readdir(logDir)).filter((f) => f.endsWith('.seg')).sort()[0];
    assert.ok(segment !== undefined, 'the log has a segment file');
    const file = path.join(logDir, segment);
    const size = (await stat(file)).size;
    const handle = await open(file, 'r+');
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    await handle.write(byte, 0, 1, at);
    await handle.close();
    const bad = await run(['verify', '--config', configFile]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^FAILED/);
    assert.match(bad.stdout, /at index \d+, segment \d+, offset \d+/);
  });

  it('events --follow prints events appended after it started, and stops on SIGINT', { timeout: 60_000 }, async () => {
    const followDir = path.join(dir, 'follow');
    const followConfig = path.join(dir, 'follow.yaml');
    await writeFile(followConfig, `log: { backend: file, dir: ${JSON.stringify(followDir)} }\nupstreams:\n  x: { transport: stdio, command: node }\n`);
    const log = await openFileLog({ dir: followDir, segmentBytes: 1 << 20, appendTimeoutMs: 5000, maxBatchEvents: 100, fsync: true });
    const child = spawn(process.execPath, ['--conditions=attest-source', CLI, 'events', '--config', followConfig, '--follow', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const lines: string[] = [];
      createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
      const appendOne = (n: number) =>
        log.append([{ id: newEventId(), schemaVersion: SCHEMA_VERSION, type: 'GatewayStopped', occurredAt: nowIso(), tenant: 'system', stream: 'system-follow', actor: SYSTEM_PRINCIPAL, data: { instance: 'follow', reason: `event ${n}` } }]);
      await appendOne(1);
      for (let i = 0; i < 100 && lines.length < 1; i++) await new Promise((r) => setTimeout(r, 50));
      await appendOne(2);
      for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(lines.length, 2, `followed lines: ${lines.join('\n')}`);
      assert.match(lines[1] ?? '', /"reason":"event 2"/);
    } finally {
      child.kill('SIGINT');
      const code = await new Promise((resolve) => child.once('exit', resolve));
      await log.close();
      assert.equal(code, 0);
    }
  });
});
