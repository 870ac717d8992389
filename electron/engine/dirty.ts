/**
 * The set of paths watcher events say may have changed. Events are hints: the
 * pair stats each path before acting. Memory is bounded: many names in one
 * directory collapse to "compare that whole directory", and past a total cap
 * the whole set collapses to one full rescan.
 */

export interface DirtySnapshot {
  /** Compare the whole tree against the database. */
  full: boolean;
  /** Paths to check together with everything below them (new or moved-in directories). */
  trees: string[];
  /** Per directory: the names to check, or 'all' to compare the directory's direct children. */
  dirs: [string, string[] | 'all'][];
  /**
   * Look for what changed since a point both sides were known to be in the
   * database (after a clean stop), instead of comparing the whole tree: the
   * local side's ctime horizon (ms), or the server's marker (see pair.ts,
   * "clean stop"). Null when not asked; dropped when `full` is set.
   */
  since: string | null;
}

export interface DirtyLimits {
  /** Names in one directory before it collapses to a directory compare. */
  perDir: number;
  /** Total paths before everything collapses to one full rescan. */
  total: number;
}

export const DEFAULT_DIRTY_LIMITS: DirtyLimits = { perDir: 256, total: 50_000 };

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True when `path` is `ancestor` or lies below it ('' is the root, the ancestor of everything). */
export function isUnder(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(ancestor + '/');
}

/** The one of `ancestors` that `path` is or lies below (the deepest), or null (O(depth), not O(ancestors)). */
export function ancestorIn(path: string, ancestors: ReadonlySet<string>): string | null {
  if (ancestors.size === 0) return null;
  for (let p = path; p !== ''; p = parentOf(p)) if (ancestors.has(p)) return p;
  return ancestors.has('') ? '' : null;
}

/** True when `path` is one of `ancestors` or lies below one of them. */
export function isUnderAny(path: string, ancestors: ReadonlySet<string>): boolean {
  return ancestorIn(path, ancestors) !== null;
}

export class DirtySet {
  private full = false;
  private since: string | null = null;
  private trees = new Set<string>();
  private dirs = new Map<string, Set<string> | 'all'>();
  private count = 0;

  constructor(private readonly limits: DirtyLimits = DEFAULT_DIRTY_LIMITS) {}

  get size(): number {
    return this.full || this.since !== null ? Number.POSITIVE_INFINITY : this.count;
  }

  isEmpty(): boolean {
    return !this.full && this.since === null && this.count === 0;
  }

  /** Ask for what changed since `token` (see DirtySnapshot.since); a full compare covers it. */
  addSince(token: string): void {
    if (!this.full) this.since = token;
  }

  addFull(): void {
    this.full = true;
    this.since = null;
    this.trees.clear();
    this.dirs.clear();
    this.count = 0;
  }

  addPath(path: string): void {
    if (this.full || path === '') {
      if (path === '') this.markDir('');
      return;
    }
    const dir = parentOf(path);
    const name = path.slice(dir === '' ? 0 : dir.length + 1);
    const cur = this.dirs.get(dir);
    if (cur === 'all') return;
    if (!cur) {
      this.dirs.set(dir, new Set([name]));
      this.bump(1);
      return;
    }
    if (cur.has(name)) return;
    if (cur.size + 1 > this.limits.perDir) {
      this.dirs.set(dir, 'all');
      this.bump(1 - cur.size);
      return;
    }
    cur.add(name);
    this.bump(1);
  }

  /** Compare one directory's direct children. */
  markDir(dir: string): void {
    if (this.full) return;
    const cur = this.dirs.get(dir);
    if (cur === 'all') return;
    this.dirs.set(dir, 'all');
    this.bump(1 - (cur ? cur.size : 0));
  }

  /** Check `path` and everything below it. */
  addTree(path: string): void {
    if (this.full) return;
    if (path === '') return this.addFull();
    if (this.trees.has(path)) return;
    this.trees.add(path);
    this.bump(1);
  }

  /** Take everything collected so far and start empty. */
  take(): DirtySnapshot {
    const snap: DirtySnapshot = { full: this.full, trees: [], dirs: [], since: this.full ? null : this.since };
    if (!this.full) {
      // Drop trees inside other trees: the outer walk covers them.
      const sorted = [...this.trees].sort();
      for (const t of sorted) {
        const last = snap.trees[snap.trees.length - 1];
        if (last === undefined || !isUnder(t, last)) snap.trees.push(t);
      }
      for (const [dir, names] of this.dirs) snap.dirs.push([dir, names === 'all' ? 'all' : [...names]]);
    }
    this.full = false;
    this.since = null;
    this.trees.clear();
    this.dirs.clear();
    this.count = 0;
    return snap;
  }

  private bump(n: number): void {
    this.count += n;
    if (this.count > this.limits.total) this.addFull();
  }
}
