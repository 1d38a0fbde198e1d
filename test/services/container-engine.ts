/**
 * Whether a container engine answers, asked through testcontainers (DOCKER_HOST, its config
 * file, the Docker and Podman sockets). Asked once per process and bounded in time: on a machine
 * with a docker CLI but no daemon the answer must be a quick "no", not a hang.
 */
import type { ContainerRuntimeClient } from 'testcontainers';
import { errorMessage } from './service.ts';

export type ContainerEngine =
  | { readonly available: true; readonly runtime: ContainerRuntimeClient; readonly host: string }
  | { readonly available: false; readonly reason: string };

const DETECT_TIMEOUT_MS = 5_000;
let detection: Promise<ContainerEngine> | undefined;

/** `ATTEST_TESTCONTAINERS=off` skips the engine even where one answers (to use deploy/local). */
export function detectContainerEngine(): Promise<ContainerEngine> {
  detection ??= detect();
  return detection;
}

async function detect(): Promise<ContainerEngine> {
  if (process.env.ATTEST_TESTCONTAINERS === 'off') {
    return { available: false, reason: 'ATTEST_TESTCONTAINERS=off' };
  }
  const timeout = AbortSignal.timeout(DETECT_TIMEOUT_MS);
  const timedOut = new Promise<never>((_, reject) => {
    timeout.addEventListener('abort', () => reject(new Error(`no answer within ${DETECT_TIMEOUT_MS} ms`)), { once: true });
  });
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const runtime = await Promise.race([getContainerRuntimeClient(), timedOut]);
    return { available: true, runtime, host: runtime.info.containerRuntime.host };
  } catch (error) {
    return { available: false, reason: errorMessage(error) };
  }
}
