/**
 * Deciding a chunk of candidates: both sides' states (a local lstat each, one stat of
 * them all on the server), the base, and the reconciler's table (reconcile.ts) with its
 * first-sync pass. Files still being written are left for later (W1), a push cut short is
 * taken for this client's own (W5), and nothing below a symlinked folder acts (N5).
 */
import type { StateDb } from '../state/db.js';
import type { Entry, LocalStat, RemoteStat } from '../types.js';
import type { Decision } from '../reconcile.js';
import { reconcile, firstSyncPass } from '../reconcile.js';
import { statRemote } from '../remote/stat.js';
import { peekSmall, smallLimit, smallOptionsOf, stateWord } from '../remote/small-files.js';
import { traced } from '../trace.js';
import { LocalAncestors, waitsForParent } from '../safe-fs.js';
import { toSide, type CycleContext, type Decided } from './context.js';
import { heldBack, ownSnapshot, remoteChanged, sameRemoteTime } from './compare.js';
import { localUnchanged } from './base-rows.js';

export class Decider {
  private readonly db: StateDb;

  constructor(private readonly ctx: CycleContext) {
    this.db = ctx.db;
  }

  async decideChunk(paths: string[]): Promise<Decided[]> {
    const wanted = paths.filter((p) => p !== '' && !this.ctx.excluder.ignores(p, false));
    // A path below a local or remote symlink (or file) is absent on that side (N1, N5).
    const view = new LocalAncestors(this.ctx.localRoot);
    const locals = wanted.map((p) => view.lstat(p));
    const above = new Map<string, RemoteStat | null>();
    const peeked = new Map<string, Buffer>();
    const remotes = await traced(`stat ${wanted.length} on the server`, () => this.statServer(wanted, above, peeked));
    const out: Decided[] = [];
    for (let i = 0; i < wanted.length; i++) {
      const path = wanted[i]!;
      const local = locals[i] ?? null;
      if (local?.kind === 'dir' && this.ctx.excluder.ignores(path, true)) continue;
      const remote = remotes[i] ?? null;
      // Still being written on either side: decided once closed or quiet (rule W1).
      if (
        (local?.kind === 'file' && this.ctx.held?.('local', path)) ||
        (remote?.kind === 'file' && this.ctx.held?.('remote', path))
      )
        continue;
      let base = this.db.get(path) ?? null;
      let localChanged = base
        ? !local || !(await localUnchanged(this.ctx.localRoot, path, local, base))
        : local !== null;
      let rChanged = base ? remoteChanged(remote, base) : remote !== null;
      // W5: a push of this file that was cut short (a dropped connection, a kill) may have
      // left on the server a version this client wrote: it is not another side's edit.
      const sending = local?.kind === 'file' && remote?.kind === 'file' ? this.db.sendingGet(path) : undefined;
      if (sending && rChanged && ownSnapshot({ ...local!, ...sending }, local!, remote!, undefined)) {
        base = {
          ...(base ?? { path, hash: null, syncedAtNs: 0n, remoteIno: null }),
          kind: 'file',
          size: remote!.size,
          mtimeNs: remote!.mtimeNs,
          mode: local!.mode,
          ino: local!.ino,
          target: null,
          remoteSize: remote!.size,
          remoteMtimeNs: remote!.mtimeNs,
        };
        rChanged = false;
        localChanged = !(local!.size === remote!.size && sameRemoteTime(local!.mtimeNs, remote!.mtimeNs));
      }
      const decision = reconcile({
        path,
        base: base ? toSide(base) : null,
        local: local ? toSide(local) : null,
        remote: remote ? toSide(remote) : null,
        localChanged,
        remoteChanged: rChanged,
        direction: this.ctx.direction,
      });
      const first =
        sending && !rChanged && !localChanged && base
          ? {
              action: 'record' as const,
              rule: 'W5',
              why: 'the server holds what this client sent before it was cut short',
            }
          : withFirstSync(this.ctx, { base, local, remote, decision });
      // N5: nothing below a folder that is a symlink or a file on either side is acted on
      // (its own change of kind goes first; see act for when it is looked at again).
      const waitsFor = view.blockedBy(path) ?? waitsForParent(path, above);
      out.push({
        path,
        local,
        remote,
        base,
        decision: waitsFor === null ? first : heldBack(first, waitsFor),
        waitsFor,
        ...(sending ? { sending: true } : {}),
        ...(peeked.has(path) ? { peek: peeked.get(path)! } : {}),
      });
    }
    return out;
  }

  /**
   * The server's state of `paths` (statRemote, filling `above` with the folders above them,
   * N5). A few paths are looked at by a peek (P6): the same states, and in the same round
   * trip the bytes of the small files that changed since their base, into `peeked`, so a
   * pull of them needs no round trip of its own.
   */
  private async statServer(
    paths: string[],
    above: Map<string, RemoteStat | null>,
    peeked: Map<string, Buffer>,
  ): Promise<(RemoteStat | null)[]> {
    const o = smallOptionsOf(this.ctx);
    if (o && paths.length && paths.length <= smallLimit(o)) {
      const unless = paths.map((p) => {
        const b = this.db.get(p);
        return b?.kind === 'file' && b.remoteSize !== null && b.remoteMtimeNs !== null
          ? stateWord({ kind: 'file', size: b.remoteSize, mtimeNs: b.remoteMtimeNs })
          : '-';
      });
      const peek = await peekSmall(o, paths, unless);
      if (peek) {
        for (const [p, data] of peek.data) peeked.set(p, data);
        return peek.stats;
      }
    }
    return statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, paths, this.ctx.caps, above);
  }
}

/** The first-sync pass (F2, F3 in reconcile.ts) over one path's decision, with the pair's mode. */
export function withFirstSync(
  c: Pick<CycleContext, 'initialSync' | 'direction'>,
  d: { base: Entry | null; local: LocalStat | null; remote: RemoteStat | null; decision: Decision },
): Decision {
  return firstSyncPass(
    {
      mode: c.initialSync,
      direction: c.direction,
      base: d.base ? toSide(d.base) : null,
      local: d.local ? toSide(d.local) : null,
      remote: d.remote ? toSide(d.remote) : null,
    },
    d.decision,
  );
}
