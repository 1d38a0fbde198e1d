/**
 * Groups a stream of records into batches: at most `max` records, and, when the source pauses
 * (a followed log at its head), whatever arrived within `waitMs` of a batch's first record. One
 * timer per batch, not per record; the read that was pending when a batch closed carries over to
 * the next one, so nothing is lost or reordered.
 */
const WAITED = Symbol('waited');

export async function* batches<T>(source: AsyncIterable<T>, max: number, waitMs: number): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  try {
    for (;;) {
      const first = await (pending ?? iterator.next());
      pending = undefined;
      if (first.done === true) return;
      const batch = [first.value];
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<typeof WAITED>((resolve) => {
        timer = setTimeout(resolve, waitMs, WAITED);
      });
      try {
        while (batch.length < max) {
          pending = iterator.next();
          const next = await Promise.race([pending, waited]);
          if (next === WAITED) break;
          pending = undefined;
          if (next.done === true) {
            yield batch;
            return;
          }
          batch.push(next.value);
        }
      } finally {
        clearTimeout(timer);
      }
      yield batch;
    }
  } finally {
    if (pending === undefined) await iterator.return?.();
    else {
      // A read is in flight: an async generator's return() waits for it, which on a quiet followed
      // log is forever. The caller's signal ends the source; the read settles into nothing.
      pending.catch(() => undefined);
      void iterator.return?.()?.catch(() => undefined);
    }
  }
}
