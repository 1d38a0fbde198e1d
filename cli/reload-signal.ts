/**
 * SIGHUP → hot reload of the config file (gateway/reload.ts), for `attest gateway` / `attest start`.
 * Listening from before start-up means an early SIGHUP no longer kills the process (Node's default);
 * it is ignored with a warning until the gateway listens. Reloads run one at a time, in order.
 */
import type { Gateway, Logger } from '#gateway';

export interface HangupReload {
  attach(gateway: Gateway): void;
  detach(): void;
}

export function reloadOnHangup(logger: Logger): HangupReload {
  let gateway: Gateway | undefined;
  const onHangup = (): void => {
    if (gateway === undefined) {
      logger.warn('SIGHUP before the gateway listens: ignored (send it again to reload the config)');
      return;
    }
    void gateway.reload('signal').then((outcome) => {
      if (outcome.applied) logger.info({ configHash: outcome.configHash, changed: outcome.changed }, 'SIGHUP: config reloaded');
      else logger.error({ issues: outcome.issues }, `SIGHUP: config reload rejected (${outcome.error.code}); the config in force is unchanged`);
    });
  };
  process.on('SIGHUP', onHangup);
  return {
    attach(g) {
      gateway = g;
    },
    detach() {
      process.off('SIGHUP', onHangup);
    },
  };
}
