/**
 * Phase timings for performance work: with LIPSYNC_TRACE=1 in the environment,
 * `traced('label', fn)` prints `[trace] 1764100000123 label 12.3 ms` (wall clock ms at
 * the end, then the duration) to stderr. Off (and
 * free) otherwise. Used by the benchmarks' analysis (bench/README.md).
 */
import { readFileSync } from 'node:fs';
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

/**
 * With LIPSYNC_TRACE=1 and LIPSYNC_TRACE_MEMORY_MS=N as well, every N ms:
 * `[trace-mem] WALL_MS rss R anon A heap USED/TOTAL external E arraybuffers B` (MiB; anon is the
 * process's anonymous resident memory from /proc/self/status, the rest process.memoryUsage()),
 * for splitting a peak of RSS into V8's heap and native memory (bench/first-sync.mjs).
 */
const MEMORY_MS = TRACE ? Number(process.env.LIPSYNC_TRACE_MEMORY_MS ?? 0) : 0;
if (MEMORY_MS > 0) {
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  const anon = (): string => {
    try {
      const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      return m ? mib(Number(m[1]) * 1024) : '?';
    } catch {
      return '?';
    }
  };
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(
      `[trace-mem] ${Date.now()} rss ${mib(m.rss)} anon ${anon()} heap ${mib(m.heapUsed)}/${mib(m.heapTotal)} external ${mib(m.external)} arraybuffers ${mib(m.arrayBuffers)}\n`,
    );
  }, MEMORY_MS).unref();
}
