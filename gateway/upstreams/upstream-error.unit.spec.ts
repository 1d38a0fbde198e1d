import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError, startFailureForOperator, stdioStartFailureForAgent } from './upstream-error.ts';

const exited = new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', 'upstream "files" (stdio, pid 4242) exited with code 1 unexpectedly; restart 1 of 10 in 250 ms\nlast stderr lines:\n  | Error: Cannot find module \'/srv/files.js\'', {
  upstream: 'files',
  transport: 'stdio',
  pid: 4242,
  exitCode: 1,
  signal: null,
  stderrTail: ["Error: Cannot find module '/srv/files.js'"],
});

describe('what an upstream that did not start is said to be', () => {
  it('to the agent: what happened, without paths or pids', () => {
    assert.equal(stdioStartFailureForAgent(exited), "it failed to start (its process exited with code 1); its error output is in the gateway's log and on /healthz");
    const killed = new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', 'x', { upstream: 'a', transport: 'stdio', pid: 1, exitCode: null, signal: 'SIGKILL' });
    assert.match(stdioStartFailureForAgent(killed), /its process was killed by SIGKILL/);
    const missing = new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', 'upstream "a" (stdio) could not start "/opt/bin/srv": spawn ENOENT', { upstream: 'a', transport: 'stdio', cause: 'ENOENT' });
    assert.match(stdioStartFailureForAgent(missing), /its command was not found/);
    assert.doesNotMatch(stdioStartFailureForAgent(missing), /\/opt/);
  });

  it('to the operator: one line with the pid, not the restart the link would have made', () => {
    assert.equal(startFailureForOperator(exited), 'upstream "files" (stdio, pid 4242) exited with code 1 before it answered initialize');
    const http = new UpstreamError('ATTEST_UPSTREAM_UNAVAILABLE', 'upstream "web" (streamable-http http://h/mcp) is unreachable: connection refused (ECONNREFUSED)', { upstream: 'web', transport: 'streamable-http' });
    assert.equal(startFailureForOperator(http), http.message);
  });
});
