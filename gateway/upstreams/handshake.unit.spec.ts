import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { Handshake } from './handshake.ts';

const INITIALIZE: JSONRPCMessage = { jsonrpc: '2.0', id: 7, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'agent', version: '1' } } };
const INITIALIZED: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
const ACCEPTED: JSONRPCMessage = { jsonrpc: '2.0', id: 7, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'up', version: '1' } } };

/** An upstream double that answers the replayed initialize with `answer(id)` and records what it was sent. */
function upstream(handshake: Handshake, answer: (id: string | number) => JSONRPCMessage | undefined): { sent: JSONRPCMessage[]; send: (message: JSONRPCMessage) => Promise<void> } {
  const sent: JSONRPCMessage[] = [];
  return {
    sent,
    async send(message) {
      sent.push(message);
      const reply = 'id' in message && 'method' in message ? answer(message.id) : undefined;
      if (reply !== undefined) queueMicrotask(() => assert.equal(handshake.noteReceived(reply), true, 'the replay answer is swallowed'));
    },
  };
}

void describe('Handshake', () => {
  void it('given an accepted initialize and initialized, when replayed, then sends both under a fresh id and swallows the answer', async () => {
    const handshake = new Handshake();
    handshake.noteSent(INITIALIZE);
    assert.equal(handshake.noteReceived(ACCEPTED), false, 'the original answer goes to the session');
    handshake.noteSent(INITIALIZED);
    const double = upstream(handshake, (id) => ({ ...ACCEPTED, id }));
    assert.equal(await handshake.replay(double.send, new AbortController().signal), true);
    assert.equal(double.sent.length, 2);
    const [replayed, initialized] = double.sent;
    assert.ok(replayed !== undefined && 'method' in replayed && 'id' in replayed);
    assert.equal(replayed.method, 'initialize');
    assert.notEqual(replayed.id, 7);
    assert.deepEqual(replayed.params, INITIALIZE.params);
    assert.deepEqual(initialized, INITIALIZED);
  });

  void it('given an initialize still unanswered or refused, when replayed, then does nothing', async () => {
    const unanswered = new Handshake();
    unanswered.noteSent(INITIALIZE);
    assert.equal(unanswered.replayable, false);
    assert.equal(await unanswered.replay(() => assert.fail('nothing to send'), new AbortController().signal), false);

    const refused = new Handshake();
    refused.noteSent(INITIALIZE);
    refused.noteReceived({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'unsupported protocol version' } });
    assert.equal(refused.replayable, false);
  });

  void it('rejects when the new upstream refuses, changes protocol version, or does not answer before the signal', async () => {
    const handshake = new Handshake();
    handshake.noteSent(INITIALIZE);
    handshake.noteReceived(ACCEPTED);
    const refusing = upstream(handshake, (id) => ({ jsonrpc: '2.0', id, error: { code: -32603, message: 'database unavailable' } }));
    await assert.rejects(handshake.replay(refusing.send, new AbortController().signal), /refused the replayed initialize: database unavailable/);
    const upgraded = upstream(handshake, (id) => ({ ...ACCEPTED, id, result: { ...ACCEPTED.result, protocolVersion: '2099-01-01' } }));
    await assert.rejects(handshake.replay(upgraded.send, new AbortController().signal), /protocol version 2099-01-01, not 2025-06-18/);
    const silent = upstream(handshake, () => undefined);
    await assert.rejects(handshake.replay(silent.send, AbortSignal.timeout(20)), { name: 'TimeoutError' });
  });
});
