/**
 * Acting on a decided chunk: content comparisons first (they become a record or a
 * conflict), then each decision goes to its lane (ACTIONS in reconcile.ts): the base
 * only, a conflict copy kept aside, the chunk's one push and one pull, or a folder
 * removed at the end of the cycle if it is empty by then.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { Entry, LocalStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import { ancestorIn } from '../dirty.js';
import { ACTIONS, conflictCopyName, reconcile } from '../reconcile.js';
import { withFirstSync } from './decide.js';
import { rsyncSameContent } from '../remote/rsync.js';
import { listRemote } from '../remote/list.js';
import { SymlinkedParentError, existsInRoot, lstatInRoot, renameInRoot, rmdirInRoot } from '../safe-fs.js';
import { nowNs, toSide, type CycleContext, type CycleState, type Decided } from './context.js';
import { entryFor, racyHash } from './base-rows.js';
import type { Transfers } from './transfer.js';

export class Actor {
  private readonly db: StateDb;

  constructor(
    private readonly ctx: CycleContext,
    private readonly s: CycleState,
    private readonly transfers: Transfers,
  ) {
    this.db = ctx.db;
  }

  /** Whether `decided` may be acted on without taking the server lock first (Transfers.canPushUnlocked, P5). */
  canActUnlocked(decided: Decided[]): boolean {
    return this.transfers.canPushUnlocked(decided);
  }

  /** `unlocked`: the caller checked canActUnlocked and holds no lock; the push holds its own (P5). */
  async act(items: Decided[], unlocked = false): Promise<void> {
    // Content comparisons first: they turn into record or conflict.
    const toCompare = items.filter((d) => d.decision.action === 'compare');
    if (toCompare.length) {
      const same = await rsyncSameContent({
        localRoot: this.ctx.localRoot,
        remote: this.ctx.remote,
        ssh: this.ctx.ssh,
        paths: toCompare.map((d) => d.path),
      });
      for (const d of toCompare) {
        d.decision = reconcile({
          path: d.path,
          base: d.base ? toSide(d.base) : null,
          local: d.local ? toSide(d.local) : null,
          remote: d.remote ? toSide(d.remote) : null,
          localChanged: true,
          remoteChanged: true,
          sameContent: same.get(d.path) ?? false,
          direction: this.ctx.direction,
        });
        d.decision = withFirstSync(this.ctx, d);
      }
    }
    this.logFirstSyncReplacements(items);
    if (this.ctx.taken) for (const d of items) this.ctx.taken(d.path);
    this.requeueHeldBack(items);

    const push: Decided[] = [];
    const pull: Decided[] = [];
    const record: Decided[] = [];
    for (const d of items) {
      const a = d.decision.action;
      switch (ACTIONS[a].lane) {
        case 'none':
        case 'compare': // compared above: never left as 'compare'
          break;
        case 'record':
          record.push(d);
          break;
        case 'forget':
          this.db.deleteTree(d.path);
          break;
        case 'push':
          push.push(d);
          break;
        case 'pull':
          pull.push(d);
          break;
        case 'dir-local':
          this.s.deferredDirs.push({ path: d.path, side: 'local' });
          break;
        case 'dir-remote':
          this.s.deferredDirs.push({ path: d.path, side: 'remote' });
          break;
        case 'aside': {
          const copy = this.keepLocalAside(d);
          if (copy && d.local?.kind === 'dir') {
            // A directory moved aside: its contents are new paths, found by the next cycle.
            this.ctx.requeueLocalTree(copy);
            this.db.deleteTree(d.path);
            pull.push({ ...d, local: null });
          } else if (copy) {
            pull.push({ ...d, local: null });
            if (a === 'conflict') {
              const st = this.lstatL(copy);
              if (st)
                push.push({
                  path: copy,
                  local: st,
                  remote: null,
                  base: null,
                  decision: { action: 'push', rule: d.decision.rule, why: 'conflict copy' },
                });
            }
          }
          break;
        }
      }
    }
    if (record.length) await this.record(record);
    if (push.length)
      await (unlocked ? this.transfers.push(push, true) : this.ctx.withRemoteLock(() => this.transfers.push(push)));
    if (pull.length) await this.transfers.pull(pull);
    // W5: an interrupted send, looked at and acted on: forgotten (a new push notes it again).
    this.db.sendingDelete(items.filter((d) => d.sending).map((d) => d.path));
  }

  /**
   * N5: a path held back because a folder above it is a symlink or a file on one side
   * is looked at again in the next cycle when that folder (or one above it) is acted on
   * in this cycle: its change of kind is then done first. Otherwise it waits for a change
   * of that folder (an event or a rescan finds it), so a link that stays never loops.
   */
  private requeueHeldBack(items: Decided[]): void {
    for (const d of items) if (ACTIONS[d.decision.action].changesSide) this.s.actedOn.add(d.path);
    const held: string[] = [];
    for (const d of items) {
      if (d.decision.rule !== 'N5' || !d.waitsFor) continue;
      held.push(d.path);
      if (ancestorIn(d.waitsFor, this.s.actedOn) === null) continue;
      if (this.ctx.requeueRemote) this.ctx.requeueRemote(d.path);
      else this.ctx.requeueLocalTree(d.path);
    }
    if (!held.length) return;
    this.ctx.log.write({
      pair: this.ctx.pair,
      level: 'info',
      event: 'state',
      msg: `${held.length} path${held.length === 1 ? '' : 's'} below a symlink (or a file) on one side left alone: decided after that folder (N5)`,
      paths: held.slice(0, 1000),
    });
  }

  private logFirstSyncReplacements(items: Decided[]): void {
    for (const rule of ['F2', 'F3'] as const) {
      const paths = items.filter((d) => d.decision.rule === rule).map((d) => d.path);
      if (!paths.length) continue;
      const n = `${paths.length} file${paths.length === 1 ? '' : 's'}`;
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'state',
        msg:
          rule === 'F2'
            ? `first sync (take the server's copy): ${n} replaced here by the server's version; this computer's versions are in .lipsync/trash`
            : `first sync (take the local copy): ${n} replaced on the server by this computer's version; the server's versions are in its .lipsync/trash`,
        paths: paths.slice(0, 1000),
      });
    }
  }

  /** Renames the local version aside as a conflict copy; returns the copy's path. */
  private keepLocalAside(d: Decided): string | null {
    if (!d.local) return null;
    const copy = conflictCopyName(d.path, this.ctx.deviceName, new Date(), (p) => existsInRoot(this.ctx.localRoot, p));
    try {
      renameInRoot(this.ctx.localRoot, d.path, copy);
    } catch (e) {
      // A folder above it became a symlink since the decision (N5): not renamed; looked at again.
      if (!(e instanceof SymlinkedParentError)) throw e;
      this.warn(e.toInfo());
      this.ctx.requeueLocalTree(d.path);
      return null;
    }
    this.db.addConflict({
      path: d.path,
      copyPath: copy,
      local: { size: d.local.size, mtime: Number(d.local.mtimeNs / 1_000_000n), origin: this.ctx.deviceName },
      remote: {
        size: d.remote?.size ?? 0,
        mtime: d.remote ? Number(d.remote.mtimeNs / 1_000_000n) : 0,
        origin: this.ctx.remoteLabel,
      },
      createdAt: Date.now(),
    });
    this.ctx.totals.conflicts++;
    this.ctx.log.write({
      pair: this.ctx.pair,
      level: 'warn',
      event: 'conflict',
      msg: `conflict: ${d.path} changed on both sides; this computer's version was kept as ${copy}`,
      paths: [d.path, copy],
    });
    return copy;
  }

  /**
   * Records paths both sides already agree on. A file written less than RACY_WINDOW_NS before
   * now gets its hash too, as every other recorded file does: without it, the next look at the
   * path could not tell it unchanged and would send the same content again (replacing the
   * server's copy, which went to the trash).
   */
  private async record(items: Decided[]): Promise<void> {
    const syncedAtNs = nowNs();
    const rows: Entry[] = [];
    for (const d of items) {
      if (!d.local || !d.remote) continue;
      rows.push(
        entryFor(
          d.path,
          d.local,
          d.remote,
          await racyHash(this.ctx.localRoot, d.path, d.local, syncedAtNs),
          syncedAtNs,
        ),
      );
    }
    this.db.upsert(rows);
  }

  /** Directories whose contents were all deleted on the other side go last, deepest first, and only if empty. */
  async deleteDeferredDirs(): Promise<void> {
    const dirs = this.s.deferredDirs.sort((a, b) => b.path.length - a.path.length);
    const remoteGone: string[] = [];
    for (const { path, side } of dirs) {
      if (side === 'local') {
        try {
          rmdirInRoot(this.ctx.localRoot, path);
          this.db.deleteTree(path);
          this.ctx.totals.deleted++;
        } catch {
          // not empty (something new arrived in it) or gone already: the next cycle decides again
        }
      } else {
        // Empty, or holding only directories that go too (deepest come first).
        let empty = true;
        for await (const child of listRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, path, this.ctx.caps, {
          recursive: false,
          // A name that is not UTF-8 is not listed by every remote kind: it is there all the same.
          onBadName: () => (empty = false),
        })) {
          if (!remoteGone.includes(child.path)) {
            empty = false;
            break;
          }
        }
        if (empty) remoteGone.push(path);
      }
    }
    if (remoteGone.length) {
      await this.ctx.withRemoteLock(() =>
        this.transfers.push(
          remoteGone.map((p) => ({
            path: p,
            local: null,
            remote: null,
            base: this.db.get(p) ?? null,
            decision: { action: 'delete-remote', rule: '', why: '' },
          })),
        ),
      );
    }
  }

  /** lstat for decisions: absent when a folder above the path is not one (N5). */
  private lstatL(path: string): LocalStat | null {
    return lstatInRoot(this.ctx.localRoot, path);
  }

  private warn(w: ErrorInfo): void {
    this.ctx.totals.warnings.push(w);
  }
}
