import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StdioUpstreamSchema } from '#schemas';
import { everythingStdio } from './fixtures/everything.ts';
import { attachRpc, initialize, isAlive, memoryLogger, watchEvents } from './fixtures/link-harness.ts';
import { UpstreamError, createUpstreamLink } from './link.ts';
import { livingChildren } from './reaper.ts';

const TEST_TIMEOUT = { timeout: 60_000 };

void describe('stdio upstream link (server-everything)', () => {
  void it('relays initialize, tools/list and tools/call, and close() leaves no process behind', TEST_TIMEOUT, async (t) => {
    const { logger } = memoryLogger();
    const link = createUpstreamLink('everything', everythingStdio(), { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);

    await link.start();
    assert.equal(link.state, 'ready');
    const { pid } = await watch.next('connected');
    assert.ok(pid !== undefined && isAlive(pid), 'the server process runs');

    const init = await initialize(rpc);
    assert.equal(typeof init['protocolVersion'], 'string');
    assert.match(JSON.stringify(init['serverInfo']), /everything/i);

    const { tools } = await rpc.request('tools/list');
    assert.ok(Array.isArray(tools) && tools.some((tool: { name?: unknown }) => tool.name === 'echo'), 'server-everything lists its echo tool');
    const echoed = await rpc.request('tools/call', { name: 'echo', arguments: { message: 'through the link' } });
    assert.match(JSON.stringify(echoed['content']), /through the link/);

    await link.close();
    assert.equal(link.state, 'closed');
    assert.equal(isAlive(pid), false, `process ${pid} is gone after close()`);
    await link.close(); // idempotent
    await assert.rejects(rpc.request('ping'), (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_UNAVAILABLE' && /everything/.test(error.message));
  });

  void it('restarts a killed process, replays the handshake invisibly and keeps serving', TEST_TIMEOUT, async (t) => {
    const { logger } = memoryLogger();
    const link = createUpstreamLink('everything', everythingStdio({ restart: { initialDelayMs: 100, maxDelayMs: 400, maxRestarts: 3 } }), { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);
    await link.start();
    const { pid: firstPid } = await watch.next('connected');
    assert.ok(firstPid !== undefined);
    await initialize(rpc);

    let sentWhileDown: Promise<unknown> | undefined;
    const previous = link.onevent;
    link.onevent = (event) => {
      previous?.(event);
      if (event.type === 'lost') sentWhileDown = rpc.request('tools/list');
    };
    process.kill(firstPid, 'SIGKILL');

    const lost = await watch.next('lost');
    assert.equal(lost.willRestart, true);
    assert.equal(lost.signal, 'SIGKILL');
    assert.match(lost.reason, /was killed by SIGKILL unexpectedly; restart 1 of 3 in 100 ms/);
    assert.ok(sentWhileDown !== undefined);
    await assert.rejects(sentWhileDown, (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_UNAVAILABLE' && /is restarting/.test(error.message));

    const restarted = await watch.next('restarted');
    assert.equal(restarted.replayedInitialize, true);
    assert.equal(restarted.attempt, 1);
    assert.ok(restarted.pid !== undefined && restarted.pid !== firstPid && isAlive(restarted.pid));
    assert.equal(link.state, 'ready');

    const echoed = await rpc.request('tools/call', { name: 'echo', arguments: { message: 'after the restart' } });
    assert.match(JSON.stringify(echoed['content']), /after the restart/);
    const strayResponses = rpc.unsolicited.filter((message) => !('method' in message));
    assert.deepEqual(strayResponses, [], 'the answer to the replayed initialize does not reach the session');
  });

  void it('gives up on a command that always fails, naming the exit code and the last stderr lines', TEST_TIMEOUT, async (t) => {
    const { logger } = memoryLogger();
    const config = StdioUpstreamSchema.parse({
      transport: 'stdio',
      command: process.execPath,
      args: ['-e', "console.error('starting up'); console.error('fatal: cannot open /nonexistent/db.sqlite'); process.exit(3)"],
      restart: { initialDelayMs: 20, maxDelayMs: 50, maxRestarts: 2 },
    });
    const link = createUpstreamLink('broken', config, { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    await link.start();

    const last = await watch.next('lost', { skip: 2 });
    const lost = watch.events.filter((event) => event.type === 'lost');
    assert.deepEqual(
      lost.map((event) => [event.willRestart, event.exitCode]),
      [
        [true, 3],
        [true, 3],
        [false, 3],
      ],
    );
    assert.equal(link.state, 'closed');
    assert.equal(last.error.code, 'ATTEST_UPSTREAM_UNAVAILABLE');
    assert.match(last.error.message, /^upstream "broken" \(stdio, pid \d+\) exited with code 3 unexpectedly; gave up after 2 restarts in a row \(restart\.maxRestarts: 2\)/);
    assert.match(last.error.message, /last stderr lines:\n {2}\| starting up\n {2}\| fatal: cannot open \/nonexistent\/db\.sqlite$/);
    assert.deepEqual(last.error.facts.stderrTail, ['starting up', 'fatal: cannot open /nonexistent/db.sqlite']);
    assert.ok(watch.events.some((event) => event.type === 'stderr' && event.line.startsWith('fatal:')));

    await assert.rejects(
      link.send({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_UNAVAILABLE' && error.message === last.error.message,
    );
  });

  void it('starts a new run of restarts once a process has stayed up for stableAfterMs', TEST_TIMEOUT, async (t) => {
    const { logger } = memoryLogger();
    const config = StdioUpstreamSchema.parse({
      transport: 'stdio',
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      restart: { initialDelayMs: 20, maxDelayMs: 20, maxRestarts: 1 },
    });
    const link = createUpstreamLink('flaky', config, { logger, stableAfterMs: 200 });
    t.after(() => link.close());
    const watch = watchEvents(link);
    await link.start();
    let pid = (await watch.next('connected')).pid;
    for (let crash = 0; crash < 3; crash += 1) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(pid !== undefined);
      process.kill(pid, 'SIGKILL');
      const lost = await watch.next('lost', { skip: crash });
      assert.equal(lost.willRestart, true, `crash ${crash + 1} after a stable period is restarted`);
      pid = (await watch.next('restarted', { skip: crash })).pid;
    }
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL'); // straight after the restart: not stable, and the budget of 1 is spent
    const lost = await watch.next('lost', { skip: 3 });
    assert.equal(lost.willRestart, false);
    assert.equal(link.state, 'closed');
  });

  void it('says clearly when the command cannot be spawned', TEST_TIMEOUT, async () => {
    const { logger } = memoryLogger();
    const link = createUpstreamLink('missing', StdioUpstreamSchema.parse({ transport: 'stdio', command: 'attest-no-such-command' }), { logger });
    await assert.rejects(
      link.start(),
      (error) =>
        error instanceof UpstreamError &&
        error.code === 'ATTEST_UPSTREAM_UNAVAILABLE' &&
        error.facts.cause === 'ENOENT' &&
        /upstream "missing" \(stdio\) could not start "attest-no-such-command".*ENOENT.*installed and on PATH/.test(error.message),
    );
    assert.equal(link.state, 'idle');
    await link.close();
  });

  void it('start() honours an aborted signal, can be retried, and refuses once the link is closed', TEST_TIMEOUT, async () => {
    const { logger } = memoryLogger();
    const link = createUpstreamLink('everything', everythingStdio(), { logger });
    const aborted = new AbortController();
    aborted.abort(new Error('the session went away'));
    await assert.rejects(link.start(aborted.signal), /the session went away/);
    assert.equal(link.state, 'idle');
    await link.start();
    assert.equal(link.state, 'ready');
    await link.close();
    await assert.rejects(link.start(), (error) => error instanceof UpstreamError && /the link is closed/.test(error.message));
  });

  void it('close() escalates to SIGKILL for a process that ignores stdin EOF and SIGTERM, and waits for it', TEST_TIMEOUT, async () => {
    const { logger } = memoryLogger();
    const config = StdioUpstreamSchema.parse({
      transport: 'stdio',
      command: process.execPath,
      args: ['-e', "process.on('SIGTERM', () => console.error('ignoring SIGTERM')); setInterval(() => {}, 1000); console.error('ready')"],
    });
    const link = createUpstreamLink('stubborn', config, { logger, terminateGraceMs: 200 });
    const watch = watchEvents(link);
    await link.start();
    const { pid } = await watch.next('connected');
    assert.ok(pid !== undefined);
    await watch.next('stderr'); // the SIGTERM handler is installed
    const started = Date.now();
    await link.close();
    assert.equal(isAlive(pid), false);
    assert.ok(Date.now() - started >= 400, 'both grace periods were given');
    assert.ok(watch.events.some((event) => event.type === 'stderr' && event.line === 'ignoring SIGTERM'), 'SIGTERM came before SIGKILL');
  });

  void it('never lets a process started during close() survive it', TEST_TIMEOUT, async () => {
    const { logger } = memoryLogger();
    const link = createUpstreamLink('everything', everythingStdio(), { logger });
    const watch = watchEvents(link);
    const starting = link.start();
    const closing = link.close();
    await assert.rejects(starting, UpstreamError);
    await closing;
    assert.equal(link.state, 'closed');
    assert.equal(watch.events.find((event) => event.type === 'connected'), undefined, 'no connected event after close()');
    assert.equal(livingChildren(), 0, 'the process spawned meanwhile was ended by close()');
  });
});
