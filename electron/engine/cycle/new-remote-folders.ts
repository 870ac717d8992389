/**
 * New server folders, pulled whole (rules T3 and T4 of docs/sync-semantics.md, "New
 * folders"): the mirror of new-folders.ts (T1/T2). A folder the server's listing shows
 * that the base does not know, with nothing below it in the base, absent here, its parent
 * a folder here, is taken out of the listing's candidates while collecting; when the cycle
 * acts it is fetched by recursive rsync runs into a staging folder in this computer's
 * `.lipsync/incoming`, checked, moved into place with one rename where its path here is
 * still absent, and recorded in pages: the server's listing (taken before the pull)
 * decides every base row. What cannot go this way is decided path by path, like any other
 * change (R5, R16–R19), in the same cycle.
 *
 * Why nothing is lost (T4): the staging folder is new and ours, so the pull replaces and
 * deletes nothing; a rename of a folder onto a path that is not absent fails (or replaces
 * an empty folder); and the base gets a row only for what is in place here, after it is.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Entry, RemoteStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import { ancestorIn, parentOf } from '../dirty.js';
import { comparePaths, lstatLocalSync } from '../scan.js';
import { rsyncPullTrees, type PullResult } from '../remote/rsync.js';
import { INCOMING_DIR, META_DIR } from '../../../shared/layout.js';
import { statRemote } from '../remote/stat.js';
import { traced } from '../trace.js';
import { LocalAncestors, existsInRoot, renameInRoot, waitsForParent } from '../safe-fs.js';
import { baseHasEntries, nowNs, type CycleContext, type CycleState } from './context.js';
import { anchoredRsyncPattern, landedAsSent } from './compare.js';
import { entryFor, racyHash } from './base-rows.js';
import { failedFiles } from './transfer.js';
import { treeRuns } from './tree-runs.js';

/** Rows recorded at a time after a folder pull (see record). */
const RECORD_PAGE = 1000;
/**
 * The names of this computer's staging folders in its .lipsync/incoming start with this:
 * a folder pushed whole by another pair whose server folder is this local root (a
 * local-path remote) is staged there too, under its client's id, and is never touched.
 */
const LOCAL_STAGING_PREFIX = 'pull-';
/** rsync runs of a folder pull at a time (see tree-runs.ts). */
const PULL_RUNS = 2;
/** Folders stat'ed on the server at a time after a run (see swappedBelow). */
const STAT_SLICE = 5000;
/** Folders of the listing looked at at a time while choosing what to pull whole. */
const DIR_PAGE = 2000;

export class NewRemoteFolders {
  private readonly db: StateDb;
  /** Server folders to pull whole (their listing rows are in the database's rtree table). */
  private readonly roots: string[] = [];
  /** Set by the cycle while it collects: folders are taken only from collect's listings. */
  open = false;
  /** Paths on the server whose names are not UTF-8 (N3): a folder above one is not pulled whole. */
  private readonly badNames: string[] = [];

  constructor(
    private readonly ctx: CycleContext,
    private readonly s: CycleState,
  ) {
    this.db = ctx.db;
    this.db.pullTreeDrop(''); // rows a cycle that never acted left behind
  }

  /** A name the server's listing skipped (N3): its folders are left to the path-by-path route. */
  badName(path: string): void {
    this.badNames.push(path);
  }

  /**
   * After a recursive listing of the server went into the scratch table (rscan), before
   * candidates are made from it: takes the topmost folders it may pull whole (T3) out of
   * it, with everything below them, into the pulled-folder table. They are not candidates
   * then; pullNewTrees fetches them.
   */
  deferFromScan(): void {
    if (!this.open || this.ctx.direction === 'send-only') return;
    if (!this.ctx.excluder.rsyncRules?.()) return;
    const base = baseHasEntries(this.db, this.s);
    const chosen = new Set<string>();
    const here = new LocalAncestors(this.ctx.localRoot);
    let after = '';
    for (;;) {
      const dirs = this.db.rscanDirs(after, DIR_PAGE);
      if (!dirs.length) break;
      after = dirs[dirs.length - 1]!;
      for (const p of dirs) {
        if (ancestorIn(p, chosen) !== null) continue;
        if (base && (this.db.get(p) || this.db.hasDescendants(p))) continue;
        const parent = parentOf(p);
        if (parent !== '' && here.lstat(parent)?.kind !== 'dir') continue;
        if (existsInRoot(this.ctx.localRoot, p)) continue;
        const below = `${p}/`;
        if (this.badNames.some((b) => b.startsWith(below))) continue;
        chosen.add(p);
        this.roots.push(p);
        this.db.pullTreeTake(p);
      }
    }
  }

  /**
   * Pulls the folders deferFromScan took, each whole (T3, T4): up to TREE_GROUPS recursive
   * rsync runs into staging folders here, and what arrived in one run is checked, moved
   * into place and recorded while the next one runs. A folder that cannot go this way has
   * its listed paths made candidates (decided path by path after this, in the same cycle).
   * Staging folders left by a kill or a crash are removed first.
   */
  async pullNewTrees(): Promise<void> {
    this.open = false;
    const roots = this.roots.splice(0).sort(comparePaths);
    const stagingOk = clearLocalIncoming(this.ctx.localRoot, roots.length > 0);
    if (!roots.length) return;
    const rules = this.ctx.excluder.rsyncRules?.() ?? null;
    const fallback = stagingOk && rules ? await this.pullTrees(roots, rules) : roots;
    for (const r of fallback) {
      this.db.pullTreeDrop(r, true);
      this.db.candAdd([r]);
      // Something made here meanwhile (a file or folder at or below it) is found by a walk.
      this.ctx.requeueLocalTree(r);
    }
  }

  /** pullNewTrees' runs (tree-runs.ts); returns the folders left to the path-by-path route. */
  private async pullTrees(roots: string[], rules: readonly string[]): Promise<string[]> {
    return treeRuns(this.ctx, roots, PULL_RUNS, {
      stage: (group) => {
        const staging = `${INCOMING_DIR}/${LOCAL_STAGING_PREFIX}${randomBytes(6).toString('hex')}`;
        const abs = join(this.ctx.localRoot, staging);
        mkdirSync(abs);
        return { staging, abs, listed: group.reduce((k, r) => k + this.db.pullTreeFiles(r), 0) };
      },
      send: (group, { staging }, progress) =>
        traced(`rsync pull ${group.length} new folders`, () =>
          rsyncPullTrees({
            localRoot: this.ctx.localRoot,
            remote: this.ctx.remote,
            ssh: this.ctx.ssh,
            paths: group,
            stagingDir: staging,
            // Files still being written on the server are left out (W1, W4): each is
            // decided path by path once closed.
            excludes: [
              ...rules,
              ...group.flatMap((g) => this.ctx.remoteHeldBelow?.(g) ?? []).map(anchoredRsyncPattern),
            ],
            bwLimitKBps: this.ctx.bwLimitKBps || undefined,
            compress: this.ctx.compress?.() ?? false,
            onProgress: progress,
          }),
        ),
      finish: (group, { staging, listed }, res) => this.finishTrees(group, staging, res, listed),
      clear: ({ abs }) => rmSync(abs, { recursive: true, force: true }),
    });
  }

  /**
   * After one rsync run into `staging`: the server's folders above each one are checked
   * again (N5: a folder swapped for a symlink meanwhile had the run read through it), each
   * folder that arrived as a folder and is still absent here is moved into place, and the
   * moved ones are recorded. Returns the folders left to the path-by-path route.
   */
  private async finishTrees(group: string[], staging: string, res: PullResult, listed: number): Promise<string[]> {
    let failed: Set<string>;
    try {
      failed = failedFiles(this.ctx.totals, res);
    } catch {
      // The run failed as a whole: path by path, which reports the error as usual.
      return group;
    }
    this.ctx.checkPaused();
    const above = new Map<string, RemoteStat | null>();
    const now = await traced(`stat ${group.length} pulled folders on the server`, () =>
      statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, group, this.ctx.caps, above),
    );
    const swapped = await this.swappedBelow(group);
    const fallback: string[] = [];
    const moved: string[] = [];
    let pruned = 0;
    await traced(`move ${group.length} pulled folders into place`, async () => {
      group.forEach((root, i) => {
        const parent = parentOf(root);
        const staged = lstatLocalSync(join(this.ctx.localRoot, staging, root));
        if (
          now[i]?.kind !== 'dir' ||
          waitsForParent(root, above) !== null ||
          swapped.has(root) ||
          staged?.kind !== 'dir' ||
          (parent !== '' && new LocalAncestors(this.ctx.localRoot).lstat(parent)?.kind !== 'dir') ||
          existsInRoot(this.ctx.localRoot, root)
        ) {
          fallback.push(root);
          return;
        }
        try {
          pruned += this.pruneUnlisted(staging, root);
          // rename(2) of a folder never replaces a file or a folder that holds anything.
          renameInRoot(this.ctx.localRoot, `${staging}/${root}`, root);
          moved.push(root);
        } catch {
          fallback.push(root);
        }
      });
      return Promise.resolve();
    });
    if (pruned)
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'state',
        msg: `${pruned} path${pruned === 1 ? '' : 's'} that arrived in a pulled folder but not as the server's listing showed them: left out, looked at again as changes (T4)`,
      });
    if (moved.length) await traced('record the pulled folders', () => this.record(moved, res, failed, listed));
    return fallback;
  }

  /**
   * T4 and N5: removes from the staged copy of `root` whatever the server's listing (taken
   * before the pull) does not show with that kind: a name read through a server folder
   * swapped for a symlink and back during the run (so from outside the server's root), or
   * one made on the server since the listing. Only listed paths are put in place; one made
   * since is reported by the server's watcher (or the next compare) and fetched as a
   * change. Symlinks are not followed. Returns how many entries were removed.
   */
  private pruneUnlisted(staging: string, root: string): number {
    let removed = 0;
    const walk = (rel: string): void => {
      const abs = join(this.ctx.localRoot, staging, rel);
      for (const d of readdirSync(abs, { withFileTypes: true })) {
        const path = `${rel}/${d.name}`;
        const kind = d.isDirectory() ? 'dir' : d.isSymbolicLink() ? 'symlink' : d.isFile() ? 'file' : 'other';
        if (this.db.pullTreeKind(path) !== kind) {
          rmSync(join(abs, d.name), { recursive: true, force: true });
          removed++;
        } else if (kind === 'dir') walk(path);
      }
    };
    walk(root);
    return removed;
  }

  /**
   * N5 below the pulled folders: the roots of `group` with a listed folder that is no longer
   * a folder on the server (swapped for a symlink during the run, so rsync's sender may have
   * read through it). Such a folder is not moved into place; its staged copy is removed.
   */
  private async swappedBelow(group: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const root of group) {
      const dirs = this.db.pullTreeDirs(root);
      for (let at = 0; at < dirs.length && !out.has(root); at += STAT_SLICE) {
        const slice = dirs.slice(at, at + STAT_SLICE);
        const st = await statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, slice, this.ctx.caps);
        if (st.some((x) => x !== null && x.kind !== 'dir')) out.add(root); // gone is no harm
      }
    }
    return out;
  }

  /**
   * The base of every listed path of the moved folders, page by page: the local state of
   * what arrived, and the server's from the listing. A path that did not arrive (unreadable
   * there, gone, still being written, failed) becomes a candidate of this cycle. One that
   * arrived other than listed (changed on the server during the pull) records the listed
   * server state, so the server's newer version is fetched next (W4, R11); it is looked at
   * again. More files than listed arriving (made on the server during the pull) has the
   * moved folders walked here in the next cycle.
   */
  private async record(moved: string[], res: PullResult, failed: Set<string>, listed: number): Promise<void> {
    let files = 0;
    const received: string[] = [];
    for (const root of moved) {
      let after = '';
      for (;;) {
        const page = this.db.pullTreePage(root, after, RECORD_PAGE);
        if (!page.length) break;
        // A turn of the event loop between pages: the next rsync run's output is read meanwhile.
        await new Promise((r) => setImmediate(r));
        after = page[page.length - 1]!.path;
        const syncedAtNs = nowNs();
        const rows: Entry[] = [];
        const cands: string[] = [];
        const view = new LocalAncestors(this.ctx.localRoot);
        for (const r of page) {
          const l = failed.has(r.path) ? null : view.lstat(r.path);
          if (!l) {
            cands.push(r.path);
            continue;
          }
          const hash = await racyHash(this.ctx.localRoot, r.path, l, syncedAtNs);
          if (l.kind === r.kind && landedAsSent(l, r) && (l.kind === 'dir' || (l.mode & 0o111) === (r.mode & 0o111))) {
            rows.push(entryFor(r.path, l, r, hash, syncedAtNs));
          } else {
            // Not what was listed: the server's file changed during the pull. Of the same
            // kind, the base keeps the listed server state (as a path-by-path pull does, W4),
            // so the server's version counts as changed and is fetched again; else what
            // arrived stands for both sides. Looked at again either way.
            rows.push(entryFor(r.path, l, l.kind === r.kind ? r : null, hash, syncedAtNs));
            this.ctx.requeueRemote?.(r.path);
          }
          if (l.kind === 'file') {
            files++;
            if (received.length < 1000) received.push(r.path);
          }
        }
        this.db.upsert(rows);
        this.db.candAdd(cands);
      }
      this.db.pullTreeDrop(root);
    }
    if (res.filesTransferred !== undefined && res.filesTransferred > listed) {
      // Files the listing did not know arrived (made on the server after it): in place,
      // without a base; a walk of the moved folders in the next cycle finds them (R16).
      for (const r of moved) this.ctx.requeueLocalTree(r);
    }
    this.ctx.totals.filesReceived += files;
    if (files) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'pull',
        msg: `received ${files} file${files === 1 ? '' : 's'} in ${moved.length} new folder${moved.length === 1 ? '' : 's'} (${res.literalBytes} bytes of data)`,
        paths: received,
        bytes: res.literalBytes,
      });
    }
  }
}

/**
 * Removes this computer's staging folders in its `.lipsync/incoming` (T4): one is only
 * ever used within one cycle's pull, and what it holds is still on the server, so one left
 * by a kill or a crash is removed, never taken for the user's files. Returns whether the
 * staging area is usable: `.lipsync` and `.lipsync/incoming` absent or real folders (never
 * a symlink: nothing is removed or written through one).
 */
export function clearLocalIncoming(localRoot: string, create: boolean): boolean {
  const kind = (rel: string): 'dir' | 'absent' | 'other' => {
    try {
      return lstatSync(join(localRoot, rel)).isDirectory() ? 'dir' : 'other';
    } catch {
      return 'absent';
    }
  };
  for (const rel of [META_DIR, INCOMING_DIR]) {
    const k = kind(rel);
    if (k === 'other') return false;
    if (k === 'dir') continue;
    if (!create) return true; // nothing staged
    try {
      mkdirSync(join(localRoot, rel)); // one level at a time: a missing root is never made (S1)
    } catch {
      return false;
    }
  }
  const dir = join(localRoot, INCOMING_DIR);
  for (const n of readdirSync(dir))
    if (n.startsWith(LOCAL_STAGING_PREFIX)) rmSync(join(dir, n), { recursive: true, force: true });
  return true;
}
