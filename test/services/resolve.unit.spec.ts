/**
 * A test that needs a service either gets one or fails saying why; it never passes without it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { resolveEndpoint } from './resolve.ts';
import type { ServiceSpec } from './resolve.ts';
import { ServiceUnavailableError } from './service.ts';

const SPEC: ServiceSpec = {
  name: 'Probe',
  variable: 'ATTEST_PROBE_URL',
  launcher: 'clickhouse',
  startContainer: () => Promise.reject(new Error('no container in this test')),
};

describe('resolveEndpoint', () => {
  afterEach(() => {
    delete process.env.ATTEST_PROBE_URL;
    delete process.env.ATTEST_PROBE_UNAVAILABLE;
  });

  it('takes the endpoint from the environment first and never stops it', async () => {
    process.env.ATTEST_PROBE_URL = ' http://127.0.0.1:1 ';
    const resolved = await resolveEndpoint(SPEC);
    assert.equal(resolved.source, 'env');
    assert.equal(resolved.endpoint, 'http://127.0.0.1:1');
    await resolved.stop();
  });

  it("fails with the global setup's reason instead of starting the service again", async () => {
    process.env.ATTEST_PROBE_UNAVAILABLE = 'clickhouse.sh: error: apt-get install failed';
    await assert.rejects(resolveEndpoint(SPEC), (error: unknown) => {
      assert.ok(error instanceof ServiceUnavailableError);
      assert.match(error.message, /^clickhouse\.sh: error: apt-get install failed\n\(found by the test run's global setup/);
      return true;
    });
  });
});
