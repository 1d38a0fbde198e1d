import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '#schemas';
import { agentFacing, withoutOperatorDetail } from './agent-facing.ts';

void describe('what an agent is told of a failure', () => {
  void it('names no log directory, upstream URL, broker, pid or stderr', () => {
    const cases: [string, string][] = [
      ['The audit log could not record this message (the event log in /var/lib/attest/log is closed)', 'The audit log could not record this message (the event log in [path] is closed)'],
      ['upstream "api" (streamable-http http://10.0.0.5:8080/mcp) could not deliver tools/call: fetch failed', 'upstream "api" could not deliver tools/call: fetch failed'],
      ['upstream "files" (stdio, pid 4242) exited with code 1\nlast stderr lines:\n  | Error: ENOENT /home/me/secret.txt', 'upstream "files" exited with code 1'],
      ['the Kafka event log (topic "attest") on kafka-1:9092,10.1.2.3:9093 is unavailable', 'the Kafka event log (topic "attest") on [address],[address] is unavailable'],
      ['child pid 77 went away; see https://example.com/x?y=1', 'child its process went away; see [url]'],
    ];
    for (const [operator, agent] of cases) assert.equal(withoutOperatorDetail(operator), agent);
  });

  void it('keeps what an agent acts on: method names, endpoints, timestamps, codes', () => {
    const text = 'No approver decided within 60000 ms (rule "r1") until 2026-11-30T09:01:00.000Z; tools/call; see /healthz; HTTP 503; ENOSPC';
    assert.equal(withoutOperatorDetail(text), text);
  });

  void it('keeps the code and scrubs the detail; an error with nothing to take out is returned as is', () => {
    const error = new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', 'upstream "u" (sse http://127.0.0.1:1/sse) is unavailable', { upstream: 'u', reason: 'at /tmp/a/b' });
    const facing = agentFacing(error);
    assert.equal(facing.changed, true);
    assert.equal(facing.error.code, 'ATTEST_UPSTREAM_UNAVAILABLE');
    assert.equal(facing.error.message, 'upstream "u" is unavailable');
    assert.deepEqual(facing.error.toJsonRpcError().data, { errorCode: 'ATTEST_UPSTREAM_UNAVAILABLE', upstream: 'u', reason: 'at [path]' });
    const plain = new GatewayError('ATTEST_DENIED', 'Denied by policy: no');
    assert.equal(agentFacing(plain).error, plain);
  });
});
