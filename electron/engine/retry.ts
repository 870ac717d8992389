/**
 * Per-path failures and their retries (docs/sync-semantics.md, "Pausing, errors,
 * degraded"). A fault that hits one path (permission denied on a server folder,
 * an immutable file, a file that does not fit on a full disk) is a warning about
 * that path, not an error of the pair: the rest keeps syncing, and the path is
 * tried again on a back-off (5 s, doubling up to 10 min) until it succeeds. Its
 * warning is shown once (not repeated while the same failure repeats) and goes
 * away when the path succeeds.
 *
 * A path can also be **held**: left out of the cycles until its next try (a file
 * that does not fit on the server's disk would otherwise stop every rsync run of
 * the pair, since rsync gives up the whole run when a write finds the disk full).
 *
 * Pure bookkeeping: the pair (pair.ts) feeds it the warnings of each cycle, asks
 * which paths are due, and puts them back in its dirty sets.
 */
import type { ErrorInfo } from '../../shared/errors.js';
import { isUnder, parentOf, type DirtySnapshot } from './dirty.js';
import type { Excluder } from './types.js';

/** The first retry of a failed path comes after this long; each failure doubles it... */
export const PATH_RETRY_FIRST_MS = 5000;
/** ...up to this. */
export const PATH_RETRY_MAX_MS = 10 * 60_000;

/** A failed path is tried early (poke) no sooner than this after its failure. */
export const POKE_MIN_MS = 2000;

interface Failing {
  warning: ErrorInfo;
  /** What makes two warnings "the same" (kind, message, fix; not the files). */
  key: string;
  tries: number;
  delayMs: number;
  nextAt: number;
  /** Left out of the cycles until nextAt. */
  hold: boolean;
  /** Put back in the dirty set for its try; not handed out again until it fails again. */
  queued: boolean;
}

export interface PathRetryOptions {
  firstMs?: number;
  maxMs?: number;
  now?: () => number;
}

/** The outcome of recording one failure. */
export interface FailOutcome {
  /** True the first time, or when the failure is not the same as the last one. */
  news: boolean;
  /** Ms until the path is tried again. */
  retryInMs: number;
}

export class PathRetries {
  private readonly failing = new Map<string, Failing>();
  private readonly firstMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;

  constructor(o: PathRetryOptions = {}) {
    this.firstMs = o.firstMs ?? PATH_RETRY_FIRST_MS;
    this.maxMs = o.maxMs ?? PATH_RETRY_MAX_MS;
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.failing.size;
  }

  has(path: string): boolean {
    return this.failing.has(path);
  }

  /** `path` failed with `warning` (one path: its `files` are set to [path]). */
  fail(path: string, warning: ErrorInfo, opts: { hold?: boolean } = {}): FailOutcome {
    const prev = this.failing.get(path);
    const key = warningKey(warning);
    const delayMs = prev ? Math.min(prev.delayMs * 2, this.maxMs) : this.firstMs;
    this.failing.set(path, {
      warning: { ...warning, files: [path] },
      key,
      tries: (prev?.tries ?? 0) + 1,
      delayMs,
      nextAt: this.now() + delayMs,
      hold: opts.hold ?? false,
      queued: false,
    });
    return { news: !prev || prev.key !== key, retryInMs: delayMs };
  }

  /** Records every path a warning names as failed; returns the warnings that are news (one per warning). */
  failAll(warnings: readonly ErrorInfo[], opts: { hold?: boolean } = {}): ErrorInfo[] {
    const news: ErrorInfo[] = [];
    for (const w of warnings) {
      const files = w.files ?? [];
      const fresh = files.filter((f) => this.fail(f, w, opts).news);
      if (fresh.length) news.push({ ...w, files: fresh });
    }
    return news;
  }

  /** Paths left out of cycles now (held, and their try not yet due). */
  held(): Set<string> {
    const now = this.now();
    const out = new Set<string>();
    for (const [p, f] of this.failing) if (f.hold && now < f.nextAt) out.add(p);
    return out;
  }

  /**
   * After a cycle that completed: every failing path it looked at (and did not
   * leave out) that did not fail again has succeeded and is forgotten. Returns them.
   */
  settle(looked: (path: string) => boolean, failedNow: ReadonlySet<string>, leftOut: ReadonlySet<string>): string[] {
    const ok: string[] = [];
    for (const p of this.failing.keys()) {
      if (failedNow.has(p) || leftOut.has(p) || !looked(p)) continue;
      ok.push(p);
    }
    for (const p of ok) this.failing.delete(p);
    return ok;
  }

  /**
   * A change was seen at or above these failing paths (`near`: e.g. their folder
   * was made writable on the server): their next try comes now, not at the end of
   * their back-off; at most once per POKE_MIN_MS after each failure, so activity
   * in a folder cannot turn the back-off into a tight loop. Returns how many.
   */
  poke(near: (path: string) => boolean): number {
    const now = this.now();
    let n = 0;
    for (const [p, f] of this.failing) {
      if (f.queued || now >= f.nextAt) continue;
      if (now - (f.nextAt - f.delayMs) < POKE_MIN_MS || !near(p)) continue;
      f.nextAt = now;
      n++;
    }
    return n;
  }

  /** Paths whose try is due (each handed out once per failure). */
  takeDue(): string[] {
    const now = this.now();
    const due: string[] = [];
    for (const [p, f] of this.failing) {
      if (f.queued || now < f.nextAt) continue;
      f.queued = true;
      due.push(p);
    }
    return due;
  }

  /** Ms until the next try is due (0: now), or null when none is waiting. */
  nextDueInMs(): number | null {
    const now = this.now();
    let next: number | null = null;
    for (const f of this.failing.values()) {
      if (f.queued) continue;
      const d = Math.max(0, f.nextAt - now);
      if (next === null || d < next) next = d;
    }
    return next;
  }

  /** One warning per kind of failure, naming every path that has it now (oldest first). */
  warnings(): ErrorInfo[] {
    const byKey = new Map<string, ErrorInfo & { files: string[] }>();
    for (const [p, f] of this.failing) {
      const w = byKey.get(f.key);
      if (w) w.files.push(p);
      else byKey.set(f.key, { ...f.warning, files: [p] });
    }
    return [...byKey.values()];
  }

  clear(): void {
    this.failing.clear();
  }
}

/** Two warnings are the same when they say the same thing (whatever files they name). */
export function warningKey(w: ErrorInfo): string {
  // Sizes (a file that does not fit, the free space) change from one try to the next.
  const text = (s: string) => s.replace(/\d+(?:\.\d+)? (?:bytes|KB|MB|GB|TB)\b/g, 'N');
  return JSON.stringify([w.kind, text(w.message), text(w.fix ?? '')]);
}

/** Whether a cycle given `snap` looks at `path` (a clean-stop `since` listing is not counted). */
export function snapshotCovers(snap: DirtySnapshot, path: string): boolean {
  if (snap.full) return true;
  if (snap.trees.some((t) => isUnder(path, t))) return true;
  const dir = parentOf(path);
  const name = dir === '' ? path : path.slice(dir.length + 1);
  for (const [d, names] of snap.dirs) {
    if (d === path) return true; // the folder itself was marked
    if (d === dir && (names === 'all' || names.includes(name))) return true;
  }
  return false;
}

/**
 * Whether `snap` names a folder above `path` in a way that may concern it: the
 * folder itself, or its listing (all of it, or the name leading to `path`).
 */
export function snapshotTouchesAbove(snap: DirtySnapshot, path: string): boolean {
  for (const [d, names] of snap.dirs) {
    if (d === path || !isUnder(path, d)) continue;
    if (names === 'all') return true;
    const rest = d === '' ? path : path.slice(d.length + 1);
    if (names.includes(rest.split('/')[0]!)) return true;
  }
  return snap.trees.some((t) => t !== path && isUnder(path, t));
}

/** Warnings de-duplicated by what they say (the same warning is shown once), files merged. */
export function dedupeWarnings(warnings: readonly ErrorInfo[]): ErrorInfo[] {
  const byKey = new Map<string, ErrorInfo>();
  for (const w of warnings) {
    const k = warningKey(w);
    const prev = byKey.get(k);
    if (!prev) byKey.set(k, { ...w, ...(w.files ? { files: [...w.files] } : {}) });
    else if (w.files) prev.files = [...new Set([...(prev.files ?? []), ...w.files])];
  }
  return [...byKey.values()];
}

/**
 * The pair's excluder, also leaving out `held` paths for one cycle: like an
 * excluded path, a held one is neither transferred nor deleted on either side,
 * and its base stays as it is. (No whole-folder rsync rules meanwhile: new
 * folders go path by path, so a held file inside one stays out.)
 */
export function holdingExcluder(inner: Excluder, held: ReadonlySet<string>): Excluder {
  if (held.size === 0) return inner;
  return {
    ignores: (p, isDir) => held.has(p) || inner.ignores(p, isDir),
    rsyncRules: () => null,
  };
}
