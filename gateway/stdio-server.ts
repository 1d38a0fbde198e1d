/**
 * `attest gateway --stdio`: serves one agent over stdin/stdout, for desktop clients that spawn
 * their MCP servers. The agent authenticates with the key in ATTEST_API_KEY (or the key named by
 * auth.stdioKeyId when the operator trusts the local user). Logs go to stderr only.
 */
import { randomUUID } from 'node:crypto';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import { GatewayError } from '#schemas';
import type { AttestConfig, AttestConfigInput } from '#schemas';
import type { Authenticated } from './auth/api-keys.ts';
import { openGatewayCore } from './gateway.ts';
import type { GatewayOptions } from './gateway.ts';
import { draft } from './recorder.ts';
import { GatewaySession } from './session/session.ts';
import { unrecordable, unrecordableProblem } from './session/protocol.ts';

export interface StdioGateway {
  /** Resolves when the agent closed stdin and the session ended. */
  readonly done: Promise<void>;
  close(reason?: string): Promise<void>;
}

export async function serveStdio(input: AttestConfig | AttestConfigInput, options: GatewayOptions & { readonly stdin?: NodeJS.ReadableStream; readonly stdout?: NodeJS.WritableStream } = {}): Promise<StdioGateway> {
  const core = await openGatewayCore(input, options);
  const env = options.env ?? process.env;
  let auth: Authenticated;
  try {
    const presented = env['ATTEST_API_KEY'];
    if (presented !== undefined && presented.length > 0) auth = core.keys.authenticateKey(presented);
    else if (core.config.auth.stdioKeyId !== undefined) auth = core.keys.byId(core.config.auth.stdioKeyId);
    else throw new GatewayError('ATTEST_UNAUTHENTICATED', 'stdio sessions need a key: set ATTEST_API_KEY, or auth.stdioKeyId in the config');
  } catch (error) {
    const refusal = error instanceof GatewayError ? error : new GatewayError('ATTEST_UNAUTHENTICATED');
    await core.recorder.record([draft(core.systemContext, 'RequestRejected', { errorCode: refusal.code, message: refusal.message, path: 'stdio' })]).catch((logError: unknown) => core.logger.error({ err: logError, refusal: refusal.code }, 'stdio: the refusal of the session could not be recorded'));
    await core.close('stdio authentication failed');
    throw refusal;
  }
  const transport = new StdioServerTransport(options.stdin as never, options.stdout as never);
  const session = new GatewaySession({ id: randomUUID(), transport: 'stdio', endpoint: 'stdio', scope: { kind: 'aggregate', upstreams: Object.keys(core.config.upstreams) }, auth }, core.sessionDeps);
  await session.open({ send: (message) => transport.send(message), close: () => transport.close() });
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let closing: Promise<void> | undefined;
  const close = (reason = 'stdin closed'): Promise<void> => {
    closing ??= (async () => {
      await session.close(reason);
      await core.close(reason);
      finish();
    })();
    return closing;
  };
  // The HTTP front door checks each message can be recorded (jsonRpcProblem); stdio messages come here straight from the SDK's parser.
  transport.onmessage = (message) => {
    const reason = unrecordable(message);
    if (reason === undefined) {
      session.handleAgentMessage(message);
      return;
    }
    const method = 'method' in message ? message.method : undefined;
    const refusal = new GatewayError('ATTEST_INVALID_REQUEST', unrecordableProblem(method === undefined ? 'the message' : `the ${method} message`, reason));
    void core.recorder
      .record([draft({ ...core.systemContext, actor: auth.principal }, 'RequestRejected', { errorCode: refusal.code, jsonrpcCode: refusal.jsonrpcCode, message: refusal.message, path: 'stdio', sessionId: session.id, ...(method !== undefined && { method }) })])
      .catch((logError: unknown) => core.logger.error({ err: logError, session: session.id, refusal: refusal.code }, 'stdio: a refused message could not be recorded (it is refused all the same)'))
      .then(() => ('id' in message && 'method' in message ? transport.send({ jsonrpc: '2.0', id: message.id, error: refusal.toJsonRpcError() }) : undefined))
      .catch((sendError: unknown) => core.logger.warn({ err: sendError, session: session.id }, 'stdio: the refusal could not be sent to the agent'));
  };
  transport.onerror = (error) => {
    void core.recorder.record([draft({ ...core.systemContext, actor: auth.principal }, 'RequestRejected', { errorCode: 'ATTEST_PARSE_ERROR', jsonrpcCode: -32700, message: `stdio: ${error.message}`, path: 'stdio', sessionId: session.id })]).catch((logError: unknown) => core.logger.error({ err: logError, session: session.id, cause: error.message }, 'stdio: an unparsable message from the agent could not be recorded'));
  };
  transport.onclose = () => void close();
  await transport.start();
  return { done, close };
}
