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
