/**
 * kill -9 of the gateway under concurrent load, on the embedded file log (see
 * support/crash-under-load.ts for what is checked). The Kafka run is in kafka-gateway.e2e.spec.ts.
 */
import { describe, it } from 'node:test';
import { crashUnderLoad } from './support/crash-under-load.ts';

describe('crash: kill -9 under concurrent load (file log)', () => {
  it('loses no forwarded call and verifies after restart', { timeout: 180_000 }, async (t) => {
    const outcome = await crashUnderLoad({ backend: 'file', dir: 'log' });
    t.diagnostic(`answered before the crash: ${outcome.answeredBeforeCrash}; received by the upstream: ${outcome.receivedByUpstream}; OutcomeUnknown recorded: ${outcome.outcomeUnknown}; ${outcome.eventsVerified}`);
  });
});
