/** Times between the gateway's own log lines (pino JSON on stderr: `time` in ms, `msg`). */

export interface PinoSpans {
  /** ms from the first line whose msg starts with `from` to the first later one starting with `to`. */
  between(from: string, to: string): number | undefined;
  /** The first line whose msg starts with `prefix`. */
  line(prefix: string): Record<string, unknown> | undefined;
}

export function pinoSpans(stderr: string): PinoSpans {
  const lines: Record<string, unknown>[] = [];
  for (const text of stderr.split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not a log line (a partial write at exit): skipped
    }
  }
  const find = (prefix: string, after = 0): { index: number; time: number } | undefined => {
    for (let i = after; i < lines.length; i++) {
      const line = lines[i] as Record<string, unknown>;
      if (typeof line['msg'] === 'string' && line['msg'].startsWith(prefix) && typeof line['time'] === 'number') return { index: i, time: line['time'] };
    }
    return undefined;
  };
  return {
    between(from, to) {
      const start = find(from);
      if (start === undefined) return undefined;
      const end = find(to, start.index + 1);
      return end === undefined ? undefined : end.time - start.time;
    },
    line(prefix) {
      const found = find(prefix);
      return found === undefined ? undefined : lines[found.index];
    },
  };
}
