/**
 * Example drafts of every event type, in the shape the code of this version writes, grouped as
 * the gateway appends them (one array per append). The golden-event generator seals them into a
 * real file log; the compatibility test checks that every type appears.
 */
import { NoteSigner, signCheckpoint } from '#eventlog';
import { digestOf, SYSTEM_PRINCIPAL, SCHEMA_VERSION } from '#schemas';
import type { EventData, EventDraft, EventType, Principal } from '#schemas';

const AGENT: Principal = Object.freeze({ kind: 'apiKey', id: 'key-ops', tenant: 'acme', team: 'platform', agent: 'release-bot', roles: Object.freeze(['deployer']) });
const ADMIN: Principal = Object.freeze({ kind: 'jwt', id: 'alice@acme.example', tenant: 'acme', roles: Object.freeze(['attest:admin', 'attest:approver']) });
const INSTANCE = 'gw-golden';
const SESSION = 'session-0190f000-0000-7000-8000-00000000a001';
const SYSTEM = `system-${INSTANCE}`;

let clock = Date.parse('2026-11-30T09:00:00.000Z');
let ids = 0;

function draft<T extends EventType>(stream: string, actor: Principal, type: T, data: EventData<T>, callId?: string): EventDraft {
  clock += 7;
  ids++;
  const event = {
    id: `0190f000-0000-7000-8000-${ids.toString(16).padStart(12, '0')}`,
    schemaVersion: SCHEMA_VERSION,
    type,
    occurredAt: new Date(clock).toISOString(),
    tenant: actor.tenant,
    stream,
    actor,
    ...(callId !== undefined && { callId, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }),
    data,
  };
  return event as unknown as EventDraft;
}

const payload = (body: unknown) => ({ recording: 'full' as const, digest: digestOf(body), bytes: Buffer.byteLength(JSON.stringify(body)), body });
const digestOnly = (body: unknown) => ({ recording: 'digest' as const, digest: digestOf(body), bytes: Buffer.byteLength(JSON.stringify(body)) });

const ORIGIN = 'example.com/attest/golden';
// Fixed seeds: Ed25519 signing is deterministic, so the golden notes are too.
const OLD_KEY = new NoteSigner(ORIGIN, Buffer.alloc(32, 0x2a));
const NEW_KEY = new NoteSigner(ORIGIN, Buffer.alloc(32, 0x2b));
const keyOf = (signer: NoteSigner) => ({ name: signer.name, keyId: signer.keyId.toString(16).padStart(8, '0'), verifierKey: signer.verifier.key });

function checkpointData(signer: NoteSigner, treeSize: number, signedAt: string) {
  const root = Buffer.from(digestOf(`root-${treeSize}`).slice('sha256:'.length), 'hex');
  const note = signCheckpoint({ origin: ORIGIN, size: treeSize, root, extensions: [`time ${signedAt}`] }, signer);
  return { instance: INSTANCE, origin: ORIGIN, treeSize, rootHash: root.toString('hex'), signedAt, signers: [keyOf(signer)], note };
}

export function goldenDrafts(): EventDraft[][] {
  const s = (type: EventType, data: never, callId?: string) => draft(SESSION, AGENT, type, data, callId);
  const sys = (type: EventType, data: never, actor: Principal = SYSTEM_PRINCIPAL) => draft(SYSTEM, actor, type, data);
  const args = { path: '/srv/app/README.md' };
  const cost = { cost: 1, limits: ['calls-per-day'], argumentsDigest: digestOf(args) };
  return [
    [sys('GatewayStarted', { instance: INSTANCE, version: '0.1.0', configHash: digestOf('config'), policyHash: digestOf('policy'), upstreams: ['files'] } as never)],
    [s('SessionOpened', { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['files'], instance: INSTANCE, remoteAddress: '127.0.0.1', userAgent: 'golden/1' } as never)],
    [
      s('RequestReceived', { from: 'agent', method: 'initialize', jsonrpcId: 0, params: payload({ protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'golden', version: '1' } }) } as never, 'call-init'),
      s('DecisionMade', { decision: 'allow', stage: 'gateway', ruleId: 'initialize', reason: 'answered by the gateway after initializing upstreams', route: 'local' } as never, 'call-init'),
    ],
    [s('UpstreamConnected', { upstream: 'files', transport: 'stdio', pid: 4242, protocolVersion: '2025-11-25', serverInfo: { name: 'files', version: '1.0.0' } } as never)],
    [s('ResultReturned', { from: 'gateway', isError: false, durationMs: 12.5, result: payload({ protocolVersion: '2025-11-25', capabilities: { tools: {} } }) } as never, 'call-init')],
    [s('SessionInitialized', { protocolVersion: '2025-11-25', clientInfo: { name: 'golden', version: '1' }, clientCapabilities: { elicitation: {} } } as never)],
    [sys('ToolPinned', { upstream: 'files', tool: 'read_file', hash: digestOf('def-1'), definition: { name: 'read_file', inputSchema: { type: 'object' } }, sessionId: SESSION } as never)],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 1, upstream: 'files', target: 'read_file', params: payload({ name: 'read_file', arguments: args }) } as never, 'call-1'),
      s('DecisionMade', { decision: 'allow', stage: 'policy', ruleId: 'allow-reads', reason: 'reads are allowed', route: 'forward', policyHash: digestOf('policy'), enforcement: cost } as never, 'call-1'),
    ],
    [s('ResultReturned', { from: 'upstream', upstream: 'files', isError: false, durationMs: 3.25, result: digestOnly({ content: [{ type: 'text', text: 'hello' }] }) } as never, 'call-1')],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 2, upstream: 'files', target: 'write_file', params: payload({ name: 'write_file', arguments: { path: '/etc/passwd' } }) } as never, 'call-2'),
      s('DecisionMade', { decision: 'deny', stage: 'policy', ruleId: 'no-writes', reason: 'Denied by policy: writes are not allowed', route: 'local', policyHash: digestOf('policy') } as never, 'call-2'),
    ],
    [s('ErrorReturned', { from: 'gateway', upstream: 'files', jsonrpcCode: -32010, errorCode: 'ATTEST_DENIED', message: 'Denied by policy: writes are not allowed', durationMs: 0.5 } as never, 'call-2')],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 3, upstream: 'files', target: 'delete_file', params: payload({ name: 'delete_file', arguments: { path: '/tmp/x' } }) } as never, 'call-3'),
      s('ApprovalRequested', { upstream: 'files', target: 'delete_file', argumentsDigest: digestOf({ path: '/tmp/x' }), ruleId: 'hold-deletes', reason: 'deletes need a person', approverRoles: ['attest:approver'], timeoutMs: 60_000, expiresAt: '2026-11-30T09:01:00.000Z', instance: INSTANCE } as never, 'call-3'),
    ],
    [
      draft(SESSION, ADMIN, 'ApprovalGranted', { reason: 'ticket OPS-1' }, 'call-3'),
      s('DecisionMade', { decision: 'allow', stage: 'approval', ruleId: 'hold-deletes', reason: 'approved by alice', route: 'forward', enforcement: { cost: 1, limits: [], argumentsDigest: digestOf({ path: '/tmp/x' }) } } as never, 'call-3'),
    ],
    [s('ErrorReturned', { from: 'upstream', upstream: 'files', jsonrpcCode: -32602, message: 'no such file', durationMs: 1.5, data: payload({ path: '/tmp/x' }) } as never, 'call-3')],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 4, upstream: 'files', target: 'delete_file', params: payload({ name: 'delete_file', arguments: { path: '/tmp/y' } }) } as never, 'call-4'),
      s('ApprovalRequested', { upstream: 'files', target: 'delete_file', argumentsDigest: digestOf({ path: '/tmp/y' }), ruleId: 'hold-deletes', reason: 'deletes need a person', approverRoles: ['attest:approver'], timeoutMs: 60_000, expiresAt: '2026-11-30T09:01:00.000Z', instance: INSTANCE } as never, 'call-4'),
    ],
    [
      draft(SESSION, ADMIN, 'ApprovalDenied', { reason: 'not on a Friday' }, 'call-4'),
      s('DecisionMade', { decision: 'deny', stage: 'approval', ruleId: 'hold-deletes', reason: 'Denied by approver', route: 'local' } as never, 'call-4'),
      s('ErrorReturned', { from: 'gateway', upstream: 'files', jsonrpcCode: -32024, errorCode: 'ATTEST_APPROVAL_DENIED', message: 'Denied by approver "alice": not on a Friday', durationMs: 4000 } as never, 'call-4'),
    ],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 5, upstream: 'files', target: 'delete_file', params: payload({ name: 'delete_file', arguments: { path: '/tmp/z' } }) } as never, 'call-5'),
      s('ApprovalRequested', { upstream: 'files', target: 'delete_file', argumentsDigest: digestOf({ path: '/tmp/z' }), ruleId: 'hold-deletes', reason: 'deletes need a person', approverRoles: ['attest:approver'], timeoutMs: 1000, expiresAt: '2026-11-30T09:00:02.000Z', instance: INSTANCE } as never, 'call-5'),
    ],
    [
      s('ApprovalExpired', { reason: 'no decision within 1000 ms', expiresAt: '2026-11-30T09:00:02.000Z' } as never, 'call-5'),
      s('DecisionMade', { decision: 'deny', stage: 'approval', ruleId: 'hold-deletes', reason: 'No approver decided within 1000 ms', route: 'local' } as never, 'call-5'),
      s('ErrorReturned', { from: 'gateway', upstream: 'files', jsonrpcCode: -32025, errorCode: 'ATTEST_APPROVAL_EXPIRED', message: 'No approver decided within 1000 ms', durationMs: 1000 } as never, 'call-5'),
    ],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 6, upstream: 'files', target: 'delete_file', params: payload({ name: 'delete_file', arguments: { path: '/tmp/w' } }) } as never, 'call-6'),
      s('ApprovalRequested', { upstream: 'files', target: 'delete_file', argumentsDigest: digestOf({ path: '/tmp/w' }), ruleId: 'hold-deletes', reason: 'deletes need a person', approverRoles: ['attest:approver'], timeoutMs: 60_000, expiresAt: '2026-11-30T09:01:00.000Z', instance: INSTANCE } as never, 'call-6'),
    ],
    [
      s('ApprovalWithdrawn', { reason: 'cancelled by the agent' } as never, 'call-6'),
      s('DecisionMade', { decision: 'deny', stage: 'approval', ruleId: 'hold-deletes', reason: 'withdrawn: cancelled by the agent', route: 'local' } as never, 'call-6'),
      s('ErrorReturned', { from: 'agent', upstream: 'files', jsonrpcCode: -32800, errorCode: 'ATTEST_CANCELLED', message: 'cancelled by the agent', durationMs: 20 } as never, 'call-6'),
    ],
    [
      s('RequestReceived', { from: 'upstream', method: 'elicitation/create', jsonrpcId: 'e1', upstream: 'files', params: payload({ message: 'Which file?', requestedSchema: { type: 'object' } }) } as never, 'call-7'),
      s('DecisionMade', { decision: 'allow', stage: 'relay', ruleId: 'server-request-relay', reason: 'server→client request relayed to the agent', route: 'forward' } as never, 'call-7'),
    ],
    [s('ResultReturned', { from: 'agent', upstream: 'files', isError: false, durationMs: 800, result: payload({ action: 'accept', content: { file: 'README.md' } }) } as never, 'call-7')],
    [s('NotificationRelayed', { from: 'upstream', method: 'notifications/progress', upstream: 'files', params: payload({ progressToken: 1, progress: 0.5 }) } as never)],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 8, upstream: 'files', target: 'read_file', params: payload({ name: 'read_file', arguments: { path: '/srv/app/CHANGELOG.md' } }) } as never, 'call-8'),
      s('DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'key:key-ops:allowTools[0]', reason: 'key may call files__*', route: 'forward' } as never, 'call-8'),
    ],
    [s('UpstreamLost', { upstream: 'files', reason: 'process exited with code 1', willRestart: true, exitCode: 1 } as never)],
    [s('OutcomeUnknown', { requestEventId: '0190f000-0000-7000-8000-000000000027', method: 'tools/call', upstream: 'files', detectedAt: '2026-11-30T09:05:00.000Z' } as never, 'call-8')],
    [sys('ToolDefinitionChanged', { upstream: 'files', tool: 'read_file', pinnedHash: digestOf('def-1'), observedHash: digestOf('def-2'), definition: { name: 'read_file', description: 'now also uploads', inputSchema: { type: 'object' } }, sessionId: SESSION } as never)],
    [sys('ToolDefinitionRejected', { upstream: 'files', tool: 'read_file', pinnedHash: digestOf('def-1'), rejectedHash: digestOf('def-2'), reason: 'exfiltration' } as never, ADMIN)],
    [sys('ToolDefinitionApproved', { upstream: 'files', tool: 'read_file', previousHash: digestOf('def-1'), hash: digestOf('def-3'), reason: 'reviewed' } as never, ADMIN)],
    [sys('KeyIssued', { keyId: 'key-ci', keyHash: digestOf('atk_secret'), tenant: 'acme', team: 'platform', agent: 'ci-bot', roles: [], expiresAt: '2027-01-01T00:00:00.000Z', allowTools: ['files__read_file'], denyTools: [] } as never, ADMIN)],
    [sys('KeyRevoked', { scope: 'key', tenant: 'acme', keyId: 'key-ci', keyIds: ['key-ci'], reason: 'rotated' } as never, ADMIN)],
    [sys('ConfigApplied', { instance: INSTANCE, trigger: 'admin', configHash: digestOf('config-2'), previousConfigHash: digestOf('config'), policyHash: digestOf('policy-2'), previousPolicyHash: digestOf('policy'), changed: ['policy'], upstreamsAdded: [], upstreamsRemoved: [] } as never, ADMIN)],
    [sys('ConfigRejected', { instance: INSTANCE, trigger: 'signal', configHash: digestOf('config-3'), currentConfigHash: digestOf('config-2'), issues: ['policy.rules[0].when: not a CEL expression'] } as never)],
    [draft(SYSTEM, SYSTEM_PRINCIPAL, 'RequestRejected', { errorCode: 'ATTEST_UNAUTHENTICATED', httpStatus: 401, jsonrpcCode: -32030, message: 'Missing or invalid API key', method: 'tools/call', path: '/mcp', remoteAddress: '127.0.0.1', bodyBytes: 120 })],
    // 2.1 (issue 15): capped attacker-controlled strings, and refusals counted beyond the recording budget.
    [draft(SYSTEM, SYSTEM_PRINCIPAL, 'RequestRejected', { errorCode: 'ATTEST_ORIGIN_FORBIDDEN', httpStatus: 403, jsonrpcCode: -32032, message: `Host "h${'x'.repeat(505)}`, path: '/mcp', remoteAddress: '203.0.113.7', host: `h${'x'.repeat(255)}`, userAgent: 'curl/8.5.0', truncated: { message: { length: 15_071, digest: digestOf('message') }, host: { length: 15_001, digest: digestOf('host') } } })],
    [sys('RequestsRejectedCounted', { instance: INSTANCE, windowStart: '2026-11-30T09:06:00.000Z', windowEnd: '2026-11-30T09:06:10.000Z', total: 20_480, counts: [{ remoteAddress: '203.0.113.7', errorCode: 'ATTEST_UNAUTHENTICATED', httpStatus: 401, count: 20_000 }, { remoteAddress: '198.51.100.2', errorCode: 'ATTEST_INVALID_REQUEST', httpStatus: 400, count: 400 }], otherSources: { sources: 12, count: 80 } } as never)],
    [draft(`session-0190f000-0000-7000-8000-00000000a002`, AGENT, 'SessionOpened', { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['files'], instance: INSTANCE, remoteAddress: '127.0.0.1', userAgent: `agent/${'y'.repeat(250)}`, truncated: { userAgent: { length: 4_096, digest: digestOf('user-agent') } } })],
    // 2.1: a result the log could not take, recorded as withheld; a call whose upstream answer broke after it ran.
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 9, upstream: 'files', target: 'read_file', params: payload({ name: 'read_file', arguments: { path: '/srv/app/big.bin' } }) } as never, 'call-9'),
      s('DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'key:key-ops:allowTools[0]', reason: 'key may call files__*', route: 'forward' } as never, 'call-9'),
    ],
    [s('ErrorReturned', { from: 'gateway', upstream: 'files', jsonrpcCode: -32014, errorCode: 'ATTEST_RESULT_NOT_RECORDED', message: 'Upstream "files" ran tools/call and answered, but the audit log could not record the answer (ATTEST_LOG_UNAVAILABLE, ENOSPC), so it is withheld; the call took effect upstream', durationMs: 41.5, withheld: { reason: 'log-unavailable', logError: 'ATTEST_LOG_UNAVAILABLE, ENOSPC', digest: digestOf({ content: [{ type: 'text', text: 'big' }] }), bytes: 262_188, isError: false } } as never, 'call-9')],
    [
      s('RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 10, upstream: 'files', target: 'read_file', params: payload({ name: 'read_file', arguments: { path: '/srv/app/README.md' } }) } as never, 'call-10'),
      s('DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'key:key-ops:allowTools[0]', reason: 'key may call files__*', route: 'forward' } as never, 'call-10'),
    ],
    [s('ErrorReturned', { from: 'gateway', upstream: 'files', jsonrpcCode: -32015, errorCode: 'ATTEST_UPSTREAM_OUTCOME_UNKNOWN', message: 'Upstream "files" received tools/call or may have, but no usable answer came back: the upstream answered with invalid JSON; the call may have taken effect', durationMs: 9.25 } as never, 'call-10')],
    [s('SessionClosed', { reason: 'client closed the session' } as never)],
    // 2.1: signed checkpoints, and a key rotation between two of them.
    [sys('CheckpointSigned', checkpointData(OLD_KEY, 31, '2026-11-30T09:00:01.000Z') as never)],
    [sys('CheckpointKeyRotated', { instance: INSTANCE, origin: ORIGIN, previousKey: keyOf(OLD_KEY), key: keyOf(NEW_KEY), lastTreeSize: 31 } as never)],
    [sys('CheckpointSigned', checkpointData(NEW_KEY, 33, '2026-11-30T09:00:02.000Z') as never)],
    [sys('GatewayStopped', { instance: INSTANCE, reason: 'shutdown' } as never)],
    // 2.1: a start after an unclean end (kill -9 of a run that started after the stop above).
    [sys('GatewayStarted', { instance: INSTANCE, version: '0.1.0', configHash: digestOf('config-2'), upstreams: ['files'] } as never)],
    [
      sys('GatewayRecovered', {
        instance: INSTANCE,
        uncleanStop: { startedEventId: '0190f000-0000-7000-8000-000000000047', startedAt: '2026-11-30T09:00:03.000Z' },
        tornTails: [{ segment: 0, offset: 40_960, bytesDropped: 517, reason: 'torn tail: the record is shorter than its declared length' }],
        staleLock: { pid: 4242 },
        outcomesUnknown: 0,
        approvalsExpired: 0,
        sessionsClosed: 0,
      } as never),
    ],
    [sys('GatewayStarted', { instance: INSTANCE, version: '0.1.0', configHash: digestOf('config-2'), upstreams: ['files'] } as never)],
    [sys('GatewayStopped', { instance: INSTANCE, reason: 'shutdown' } as never)],
  ];
}
