import type { JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, RequestId } from '@modelcontextprotocol/client';

interface ReplayWaiter {
  readonly id: RequestId;
  readonly resolve: (message: JSONRPCMessage) => void;
}

/**
 * Remembers the lifecycle handshake a session sent through a link, so that a fresh upstream (a restarted
 * process, a new HTTP session) can be brought back to the state the agent believes it is in without the
 * agent noticing. MCP lifecycle: https://modelcontextprotocol.io/specification/2025-06-18/basic/lifecycle
 *
 * Only an `initialize` the upstream accepted is replayed: one that never got its answer is the session's to
 * fail, and replaying it would leave the agent and the upstream disagreeing about whether they are initialized.
 */
export class Handshake {
  #initialize: JSONRPCRequest | undefined;
  #awaitingId: RequestId | undefined;
  #accepted = false;
  #acceptedVersion: unknown;
  #initialized: JSONRPCNotification | undefined;
  #replay: ReplayWaiter | undefined;
  #replays = 0;

  /** Called for every message the session sends; O(1) for everything but the two handshake messages. */
  noteSent(message: JSONRPCMessage): void {
    if (!('method' in message)) return;
    if (message.method === 'initialize' && 'id' in message) {
      this.#initialize = structuredClone(message);
      this.#awaitingId = message.id;
      this.#accepted = false;
      this.#initialized = undefined;
    } else if (message.method === 'notifications/initialized' && !('id' in message)) {
      this.#initialized = structuredClone(message);
    }
  }

  /** Called for every message the upstream sends. Returns true when the message answers a replay and must not reach the session. */
  noteReceived(message: JSONRPCMessage): boolean {
    if (this.#awaitingId === undefined && this.#replay === undefined) return false;
    if ('method' in message || !('id' in message)) return false;
    if (this.#replay !== undefined && message.id === this.#replay.id) {
      this.#replay.resolve(message);
      return true;
    }
    if (message.id === this.#awaitingId) {
      this.#awaitingId = undefined;
      this.#accepted = 'result' in message;
      this.#acceptedVersion = 'result' in message ? message.result.protocolVersion : undefined;
    }
    return false;
  }

  get replayable(): boolean {
    return this.#accepted && this.#initialize !== undefined;
  }

  /**
   * Sends the remembered `initialize` under an id of its own, waits for its answer (which is swallowed), then
   * the remembered `notifications/initialized`. Resolves false when there was nothing to replay. Rejects when
   * the upstream refuses, answers with another protocol version, or `signal` aborts first.
   */
  async replay(send: (message: JSONRPCMessage) => Promise<void>, signal: AbortSignal): Promise<boolean> {
    const initialize = this.#initialize;
    if (!this.#accepted || initialize === undefined) return false;
    signal.throwIfAborted();
    const id = `attest-replay-${++this.#replays}`;
    let onAbort: (() => void) | undefined;
    const answered = new Promise<JSONRPCMessage>((resolve, reject) => {
      onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('replay aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.#replay = { id, resolve };
    });
    // The abort may land while `send` is still writing; the rejection is observed by the `await` below.
    answered.catch(() => undefined);
    let answer: JSONRPCMessage;
    try {
      await send({ ...initialize, id });
      answer = await answered;
    } finally {
      this.#replay = undefined;
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
    if ('error' in answer) throw new Error(`the upstream refused the replayed initialize: ${answer.error.message} (code ${answer.error.code})`);
    if ('result' in answer && answer.result.protocolVersion !== this.#acceptedVersion) {
      throw new Error(`the upstream now answers with protocol version ${String(answer.result.protocolVersion)}, not ${String(this.#acceptedVersion)} as agreed with the session`);
    }
    if (this.#initialized !== undefined) await send(this.#initialized);
    return true;
  }
}
