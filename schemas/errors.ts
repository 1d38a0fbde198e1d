/**
 * Errors the gateway returns to agents. JSON-RPC codes are the protocol contract; `errorCode` is
 * the stable string an operator greps for. Codes from -32000 to -32099 are implementation-defined
 * server errors (JSON-RPC 2.0 §5.1); -32002 (resource not found) and -32042 (URL elicitation)
 * are used by MCP itself, so Attest stays clear of them.
 */
export const JSONRPC = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  RESOURCE_NOT_FOUND: -32002,
});

export const GATEWAY_ERRORS = Object.freeze({
  ATTEST_PARSE_ERROR: { jsonrpc: JSONRPC.PARSE_ERROR, http: 400, message: 'Parse error: the body is not valid JSON' },
  ATTEST_INVALID_REQUEST: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 400, message: 'Invalid Request: not a JSON-RPC 2.0 message' },
  ATTEST_BODY_TOO_LARGE: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 413, message: 'Request body exceeds the gateway limit' },
  ATTEST_UNAUTHENTICATED: { jsonrpc: -32030, http: 401, message: 'Missing or invalid API key' },
  ATTEST_KEY_EXPIRED: { jsonrpc: -32031, http: 401, message: 'API key expired' },
  ATTEST_ORIGIN_FORBIDDEN: { jsonrpc: -32032, http: 403, message: 'Origin not allowed' },
  ATTEST_UNKNOWN_SESSION: { jsonrpc: -32033, http: 404, message: 'Unknown or expired session' },
  ATTEST_SESSION_LIMIT: { jsonrpc: -32043, http: 429, message: 'Too many open sessions: close one (HTTP DELETE) or wait for idle ones to expire' },
  ATTEST_SESSION_REQUIRED: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 400, message: 'Mcp-Session-Id header required' },
  ATTEST_NOT_ACCEPTABLE: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 406, message: 'Not Acceptable: the client must accept both application/json and text/event-stream' },
  ATTEST_UNSUPPORTED_PROTOCOL_VERSION: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 400, message: 'Unsupported MCP-Protocol-Version' },
  ATTEST_UNKNOWN_SERVER: { jsonrpc: -32034, http: 404, message: 'No such upstream server' },
  ATTEST_FORBIDDEN: { jsonrpc: -32035, http: 403, message: 'Forbidden: the credential lacks the role this needs' },
  ATTEST_KEY_REVOKED: { jsonrpc: -32036, http: 401, message: 'API key revoked' },
  ATTEST_TOKEN_INVALID: { jsonrpc: -32037, http: 401, message: 'Invalid bearer token' },
  ATTEST_JWKS_UNAVAILABLE: { jsonrpc: -32038, http: 401, message: "The identity provider's signing keys (JWKS) could not be fetched; the token cannot be checked" },
  ATTEST_NOT_FOUND: { jsonrpc: -32039, http: 404, message: 'No such object' },
  ATTEST_DENIED: { jsonrpc: -32010, http: 200, message: 'Denied by policy' },
  ATTEST_RATE_LIMITED: { jsonrpc: -32020, http: 200, message: 'Rate limit exceeded' },
  ATTEST_BUDGET_EXHAUSTED: { jsonrpc: -32021, http: 200, message: 'Budget exhausted' },
  ATTEST_LOOP_DETECTED: { jsonrpc: -32022, http: 200, message: 'Loop guard: the same call repeated too often' },
  ATTEST_APPROVAL_REQUIRED: { jsonrpc: -32023, http: 200, message: 'Approval required, and this gateway cannot hold calls for approval' },
  ATTEST_APPROVAL_DENIED: { jsonrpc: -32024, http: 200, message: 'Denied by an approver' },
  ATTEST_APPROVAL_EXPIRED: { jsonrpc: -32025, http: 200, message: 'Approval not given in time; denied (fail closed)' },
  ATTEST_LOG_UNAVAILABLE: { jsonrpc: -32011, http: 503, message: 'The audit log could not record this message; nothing was forwarded (fail closed)' },
  /** The call never reached the upstream: nothing of it ran there (compare ATTEST_UPSTREAM_OUTCOME_UNKNOWN). */
  ATTEST_UPSTREAM_UNAVAILABLE: { jsonrpc: -32012, http: 200, message: 'Upstream unavailable; the call did not reach it' },
  /** The call reached the upstream (or may have), and its answer was lost or unusable: it may have taken effect. */
  ATTEST_UPSTREAM_OUTCOME_UNKNOWN: { jsonrpc: -32015, http: 200, message: 'The call reached the upstream but no usable answer came back; it may have taken effect' },
  ATTEST_UPSTREAM_TIMEOUT: { jsonrpc: -32013, http: 200, message: 'Upstream did not answer in time' },
  ATTEST_METHOD_NOT_FOUND: { jsonrpc: JSONRPC.METHOD_NOT_FOUND, http: 200, message: 'Method not found' },
  ATTEST_INVALID_PARAMS: { jsonrpc: JSONRPC.INVALID_PARAMS, http: 200, message: 'Invalid params' },
  ATTEST_UNKNOWN_RESOURCE: { jsonrpc: JSONRPC.RESOURCE_NOT_FOUND, http: 200, message: 'Resource not found' },
  ATTEST_UNKNOWN_TOOL: { jsonrpc: JSONRPC.INVALID_PARAMS, http: 200, message: 'Unknown tool' },
  ATTEST_NOT_INITIALIZED: { jsonrpc: JSONRPC.INVALID_REQUEST, http: 400, message: 'Session not initialized' },
  ATTEST_RESULT_NOT_RECORDED: { jsonrpc: -32014, http: 503, message: 'The upstream ran the call and answered, but the audit log could not record the result, so it is withheld' },
  ATTEST_TOOL_QUARANTINED: { jsonrpc: -32026, http: 200, message: 'Tool quarantined: its definition changed since it was pinned' },
  ATTEST_NO_SUCH_TOOL_CHANGE: { jsonrpc: -32027, http: 404, message: 'No such pending tool-definition change' },
  ATTEST_INTERNAL: { jsonrpc: JSONRPC.INTERNAL_ERROR, http: 500, message: 'Internal gateway error' },
  ATTEST_CONFIG_REJECTED: { jsonrpc: -32040, http: 422, message: 'Config reload rejected; the config in force is unchanged' },
  ATTEST_RELOAD_UNAVAILABLE: { jsonrpc: -32041, http: 409, message: 'This gateway cannot reload its config (started without a config file)' },
  ATTEST_CREDENTIALS_AMBIGUOUS: { jsonrpc: -32050, http: 400, message: 'More than one credential in the request (two Authorization headers, or a key in the URL); send exactly one Authorization header' },
  ATTEST_TOO_MANY_CONNECTIONS: { jsonrpc: -32051, http: 503, message: 'Too many open connections from this address' },
  ATTEST_REQUEST_TIMEOUT: { jsonrpc: -32052, http: 408, message: 'The request was not received in time' },
  ATTEST_HEADERS_TOO_LARGE: { jsonrpc: -32053, http: 431, message: 'Request headers too large' },
});
export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

/** A refusal by the gateway, carrying the stable code, the JSON-RPC code and a message a person can act on. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly jsonrpcCode: number;
  readonly httpStatus: number;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  constructor(code: GatewayErrorCode, message?: string, detail?: Record<string, unknown>, options?: ErrorOptions) {
    const spec = GATEWAY_ERRORS[code];
    super(message ?? spec.message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.jsonrpcCode = spec.jsonrpc;
    this.httpStatus = spec.http;
    this.detail = detail;
  }
  /** The JSON-RPC error object sent to the agent. */
  toJsonRpcError(): { code: number; message: string; data: Record<string, unknown> } {
    return { code: this.jsonrpcCode, message: this.message, data: { errorCode: this.code, ...this.detail } };
  }
}
