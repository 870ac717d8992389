/**
 * Giving memory back after a large sync cycle.
 *
 * A cycle over 100,000 paths grows V8's heap (new space to its 32 MiB maximum, old space
 * to ~80 MiB) although little stays live once it ends (~15 MiB). V8 keeps those pages
 * committed (and resident) while the process idles: the idle daemon stayed at 150-180 MiB.
 * A memory-reducing full GC once things are quiet shrinks both spaces back to what is live.
 *
 * `v8.queryObjects()` is the one API that runs such a GC (V8's CollectAllAvailableGarbage:
 * old space compacted, new space shrunk to 1 MiB). A plain `gc()` (--expose-gc) frees old
 * space but keeps new space at 32 MiB while the recent allocation rate is high, which it
 * is a second after a big cycle; it is only the fallback where queryObjects is missing.
 *
 * The GC gives back V8's pages; what the cycle left in glibc's malloc heap (SQLite's, libuv's,
 * Node's buffers) stays as free holes between live blocks, which free() never returns: at
 * 1,000,000 files ~17 MiB of the idle daemon's RSS. malloc_trim(0) (native.ts) returns them.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { mallocTrim } from './native.js';
import { TRACE } from './trace.js';

/**
 * Committed but unused V8 heap from which a quiet moment is worth a full GC (~10-20 ms with the
 * ~10 MiB an idle engine keeps live). With 16 MiB, a restart at 1,000,000 files left the idle
 * node at 70.5 MiB (25.8 MiB anonymous) with no release at all.
 */
export const HEAP_SLACK_BYTES = 8 * 1024 * 1024;
/** Quiet time after the last cycle before the GC. */
export const RELEASE_DELAY_MS = 1000;

/** Never instantiated: queryObjects counts its instances (0), the GC before is what we want. */
class NoInstances {}

let fullGc: (() => void) | null | undefined;
let timer: NodeJS.Timeout | null = null;

function memoryReducingGc(): (() => void) | null {
  if (fullGc !== undefined) return fullGc;
  fullGc = null;
  const query = (v8 as { queryObjects?: (ctor: unknown, opts: { format: 'count' }) => number }).queryObjects;
  if (typeof query === 'function') {
    fullGc = () => {
      // Node prints "ExperimentalWarning: v8.queryObjects() is an experimental feature" once:
      // not something a user of the daemon should see.
      const emit = process.emitWarning;
      process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
        if (String(typeof warning === 'string' ? warning : warning.message).includes('queryObjects')) return;
        (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
      }) as typeof process.emitWarning;
      try {
        query(NoInstances, { format: 'count' });
      } finally {
        process.emitWarning = emit;
      }
    };
  } else {
    try {
      if (typeof globalThis.gc === 'function') fullGc = globalThis.gc as () => void;
      else {
        v8.setFlagsFromString('--expose-gc');
        fullGc = vm.runInNewContext('gc') as () => void;
      }
    } catch {
      fullGc = null;
    }
  }
  return fullGc;
}

/**
 * Runs a memory-reducing full GC now when the heap holds at least `slack` bytes it does not use,
 * then gives malloc's free pages back (where the native helper is built; that costs ~1 ms, so it
 * runs after every quiet moment, GC or not). Returns whether it did either.
 */
export function releaseHeap(slack = HEAP_SLACK_BYTES, trim = mallocTrim()): boolean {
  const m = process.memoryUsage();
  const gc = m.heapTotal - m.heapUsed >= slack ? memoryReducingGc() : null;
  gc?.();
  const rssBeforeTrim = TRACE ? process.memoryUsage.rss() : 0;
  const trimmed = trim ? trim() : null;
  if (TRACE) {
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    const a = process.memoryUsage();
    process.stderr.write(
      `[trace] memory after the heap release: rss ${mib(a.rss)} MiB (${trimmed === null ? 'no malloc_trim: out/native/malloc-trim.node not built' : `${mib(rssBeforeTrim)} MiB before malloc_trim`}), heap ${mib(a.heapUsed)} of ${mib(a.heapTotal)} MiB (before ${mib(m.heapUsed)} of ${mib(m.heapTotal)}${gc ? '' : ', no GC: little slack'}), external ${mib(a.external)} MiB, array buffers ${mib(a.arrayBuffers)} MiB\n`,
    );
  }
  return gc !== null || trimmed === true;
}

/**
 * Something to do again (an event, a cycle starting): the pending release waits for the next
 * quiet moment, so its GC and trim never hold up a sync (a burst written 0.3 s after the last
 * cycle used to meet the release in the middle of its own cycle).
 */
export function cancelHeapRelease(): void {
  if (timer) clearTimeout(timer);
  timer = null;
}

/** Whether a release is waiting for its quiet moment. */
export function heapReleasePending(): boolean {
  return timer !== null;
}

/** After a cycle: once no other cycle ended and nothing else happened for `delayMs`, `releaseHeap()`. */
export function scheduleHeapRelease(delayMs = RELEASE_DELAY_MS): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    releaseHeap();
  }, delayMs);
  timer.unref();
}
