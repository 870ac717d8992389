/**
 * The rsync runs of a whole-folder push (new-folders.ts, T1/T2) or pull
 * (new-remote-folders.ts, T3/T4), one shape for both: the folders go in up to TREE_GROUPS
 * groups, `parallel` runs at a time (the caller's measured choice: a pull's two runs keep
 * both ends busier than one, a push's two receivers on the server slow each other), each
 * into a staging folder of its own; what one run brought is checked, moved
 * into place and recorded (`finish`) while later runs still go, one run's finish after
 * another's (they share the scratch table and the lock). Progress is the sum of the runs'
 * own counts, finished runs included.
 *
 * The first failure of a run stops new runs; the runs already going end, their finishes
 * are skipped (their folders go path by path), every staging folder is cleared, and the
 * failure is thrown after the last finish. A finish that throws is a failure too.
 */
import { TREE_GROUPS, type CycleContext } from './context.js';

/** One run's own progress, as rsync reports it. */
export interface RunProgress {
  filesDone: number;
  filesKnown?: number;
  bytes: number;
  rateBps: number;
}

export interface TreeRunSteps<S, R> {
  /** The staging folder (or whatever the run needs) of a group: made before its run. */
  stage(group: string[]): S;
  /** The run itself; reports its progress through `progress`. */
  send(group: string[], staged: S, progress: (p: RunProgress) => void): Promise<R>;
  /** After a run: what arrived is checked, moved and recorded. Returns the folders left to go path by path. */
  finish(group: string[], staged: S, res: R): Promise<string[]>;
  /** Removes a run's staging folder (after its finish, or after a failure). */
  clear(staged: S): unknown;
}

/** Runs the groups of `roots`; returns the folders left to the path-by-path route. */
export async function treeRuns<S, R>(
  ctx: Pick<CycleContext, 'checkPaused' | 'onProgress'>,
  roots: readonly string[],
  parallel: number,
  steps: TreeRunSteps<S, R>,
): Promise<string[]> {
  const per = Math.ceil(roots.length / TREE_GROUPS);
  const groups: string[][] = [];
  for (let at = 0; at < roots.length; at += per) groups.push(roots.slice(at, at + per));
  const fallback: string[] = [];
  let finishing: Promise<void> = Promise.resolve();
  let failure: unknown = null;
  const done = { files: 0, bytes: 0 };
  const live = new Map<number, RunProgress>();
  const report = () => {
    let files = done.files,
      known = done.files,
      bytes = done.bytes,
      rate = 0;
    for (const p of live.values()) {
      files += p.filesDone;
      known += p.filesKnown ?? 0;
      bytes += p.bytes;
      rate += p.rateBps;
    }
    ctx.onProgress({ filesDone: files, filesTotal: Math.max(files, known), bytes, rateBps: rate });
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (failure === null && next < groups.length) {
      const n = next++;
      const group = groups[n]!;
      let staged: S | undefined;
      let res: R;
      try {
        ctx.checkPaused();
        staged = steps.stage(group);
        res = await steps.send(group, staged, (p) => {
          live.set(n, p);
          report();
        });
      } catch (e) {
        failure ??= e;
        if (staged !== undefined) await steps.clear(staged);
        break;
      } finally {
        const last = live.get(n);
        live.delete(n);
        if (last) {
          done.files += last.filesDone;
          done.bytes += last.bytes;
        }
      }
      const s = staged;
      finishing = finishing
        .then(async () => {
          if (failure !== null) fallback.push(...group);
          else fallback.push(...(await steps.finish(group, s, res)));
        })
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => steps.clear(s));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, groups.length) }, worker));
  await finishing;
  if (failure !== null) throw failure;
  return fallback;
}
