/**
 * The CLI's one client for a running gateway's admin API (`attest keys|pins|approvals`): the admin
 * key as a bearer token (from ATTEST_ADMIN_KEY, never argv), JSON in and out, a bounded wait, and
 * errors that say what the gateway answered.
 */
const TIMEOUT_MS = 30_000;

export interface AdminResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly json: Record<string, unknown>;
}

/** One request; the answer whatever its status (a body that is not JSON comes back as `{ text }`). */
export async function adminRequest(base: string, key: string, method: 'GET' | 'POST', path: string, body?: object): Promise<AdminResponse> {
  // Appended, not resolved: a gateway behind a path prefix (https://host/attest) keeps its prefix.
  const response = await fetch(`${base.replace(/\/+$/, '')}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch((error: unknown) => {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new Error(`cannot reach the gateway at ${base}: ${(error as Error).message}${cause === undefined ? '' : ` (${cause})`}`);
  });
  const text = await response.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text: text.slice(0, 500) };
  }
  return { status: response.status, ok: response.ok, json };
}

/** The gateway's refusal in one line: its message, HTTP status, errorCode and JSON-RPC code. */
export function describeAdminError(response: AdminResponse): string {
  const error = response.json['error'] as { code?: number; message?: string; data?: { errorCode?: string } } | undefined;
  const code = [error?.data?.errorCode, error?.code].filter((part) => part !== undefined).join(' ');
  return `${error?.message ?? JSON.stringify(response.json).slice(0, 500)} (HTTP ${response.status}${code === '' ? '' : `, ${code}`})`;
}

/** One request that must succeed: its JSON body, or an Error describing the refusal. */
export async function adminCall(base: string, key: string, method: 'GET' | 'POST', path: string, body?: object): Promise<Record<string, unknown>> {
  const response = await adminRequest(base, key, method, path, body);
  if (!response.ok) throw new Error(describeAdminError(response));
  return response.json;
}
