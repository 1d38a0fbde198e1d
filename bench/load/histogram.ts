/**
 * A small HDR-style latency histogram (after HdrHistogram's log-linear layout): values in
 * nanoseconds, exact below 2048 ns, above that 1024 linear sub-buckets per power of two, so every
 * recorded value is kept within 0.1 % (three significant digits) at any magnitude, in fixed memory
 * (about 40k counters up to an hour), with O(1) recording. `hdr-histogram-js` is not a dependency
 * of the project, and this is all the benchmarks need.
 */

const SUB_BUCKET_BITS = 10;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS; // 1024
const LINEAR_LIMIT = SUB_BUCKETS * 2; // values below are counted exactly
/** Largest value kept: 2^42 ns ≈ 73 minutes; larger values are clamped to it (and counted). */
const MAX_EXPONENT = 42 - SUB_BUCKET_BITS - 1;
const MAX_VALUE = 2 ** 42 - 1;

function indexOf(value: number): number {
  if (value < LINEAR_LIMIT) return value;
  let exponent = Math.floor(Math.log2(value)) - SUB_BUCKET_BITS; // value / 2^exponent is in [1024, 2048)
  // log2 may round across a power of two; the bucket must hold the value exactly.
  if (value >= 2 ** (exponent + SUB_BUCKET_BITS + 1)) exponent++;
  else if (value < 2 ** (exponent + SUB_BUCKET_BITS)) exponent--;
  const sub = Math.floor(value / 2 ** exponent) - SUB_BUCKETS;
  return LINEAR_LIMIT + (exponent - 1) * SUB_BUCKETS + sub;
}

/** The largest value that lands in bucket `index` (what a percentile reports, like HdrHistogram's highestEquivalentValue). */
function highestValueAt(index: number): number {
  if (index < LINEAR_LIMIT) return index;
  const exponent = Math.floor((index - LINEAR_LIMIT) / SUB_BUCKETS) + 1;
  const sub = (index - LINEAR_LIMIT) % SUB_BUCKETS;
  return (SUB_BUCKETS + sub + 1) * 2 ** exponent - 1;
}

export interface HistogramSummary {
  readonly count: number;
  readonly minMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class LatencyHistogram {
  readonly #counts = new Float64Array(LINEAR_LIMIT + MAX_EXPONENT * SUB_BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;
  #clamped = 0;

  /** Records one latency in nanoseconds (negative values count as 0). */
  record(nanoseconds: number): void {
    let value = Math.max(0, Math.round(nanoseconds));
    if (value > MAX_VALUE) {
      value = MAX_VALUE;
      this.#clamped++;
    }
    const index = indexOf(value);
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count++;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  get count(): number {
    return this.#count;
  }

  /** Values beyond the range, recorded as the largest value. */
  get clamped(): number {
    return this.#clamped;
  }

  /** The value at `percentile` (0–100) in ns: the highest value equivalent to the one at that rank. */
  valueAt(percentile: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, percentile)) / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) return Math.min(highestValueAt(i), this.#max);
    }
    return this.#max;
  }

  add(other: LatencyHistogram): void {
    const counts = other.#counts;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i] ?? 0;
      if (c !== 0) this.#counts[i] = (this.#counts[i] ?? 0) + c;
    }
    this.#count += other.#count;
    this.#sum += other.#sum;
    this.#clamped += other.#clamped;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  summary(): HistogramSummary {
    const ms = (ns: number): number => ns / 1e6;
    return {
      count: this.#count,
      minMs: this.#count === 0 ? Number.NaN : ms(this.#min),
      meanMs: this.#count === 0 ? Number.NaN : ms(this.#sum / this.#count),
      p50Ms: ms(this.valueAt(50)),
      p90Ms: ms(this.valueAt(90)),
      p99Ms: ms(this.valueAt(99)),
      p999Ms: ms(this.valueAt(99.9)),
      maxMs: this.#count === 0 ? Number.NaN : ms(this.#max),
    };
  }
}
