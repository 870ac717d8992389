/**
 * Phase timings for performance work: with LIPSYNC_TRACE=1 in the environment,
 * `traced('label', fn)` prints `[trace] 1764100000123 label 12.3 ms` (wall clock ms at
 * the end, then the duration) to stderr. Off (and
 * free) otherwise. Used by the benchmarks' analysis (bench/README.md).
 */
import { performance } from 'node:perf_hooks';

export const TRACE = process.env.LIPSYNC_TRACE === '1';

export async function traced<T>(label: string, fn: () => Promise<T>): Promise<T> {
  if (!TRACE) return fn();
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    process.stderr.write(`[trace] ${Date.now()} ${label} ${(performance.now() - t0).toFixed(1)} ms\n`);
  }
}

/**
 * With tracing on, a span for one child process run by proc/run.ts: `[trace] … child
 * ssh (statRemote) 31.2 ms`, named by the command and the engine function that asked for
 * it, so a profile counts the processes (over ssh: the round trips) one change costs.
 */
export function childSpan(cmd: string): (() => void) | null {
  if (!TRACE) return null;
  const t0 = performance.now();
  const by = callerName();
  return () =>
    process.stderr.write(
      `[trace] ${Date.now()} child ${cmd.split('/').pop()} (${by}) ${(performance.now() - t0).toFixed(1)} ms\n`,
    );
}

/** The first engine function on the stack outside the process and script layers. */
function callerName(): string {
  const skip =
    /\b(childSpan|callerName|run|runScript|runRemote|Promise|new Promise|SshOps\.\w+)\b|node:internal|proc\/run|remote\/script/;
  for (const line of (new Error().stack ?? '').split('\n').slice(1)) {
    if (skip.test(line)) continue;
    const m = /at (?:async )?([\w$.<>]+) /.exec(line);
    if (m) return m[1]!;
  }
  return '?';
}
