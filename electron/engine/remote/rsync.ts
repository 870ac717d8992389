/**
 * Moving a list of changed paths with ONE rsync run, in either direction (push:
 * local → remote; pull: remote → local), whole new folders into a staging folder
 * on the server, and one file from the server (a version). The arguments of each
 * run, with why each flag is there: rsync-args.ts; comparing content with rsync's
 * checksums: rsync-compare.ts; rsync's versions: rsync-version.ts; its progress and
 * itemized lines: progress.ts.
 *
 * Paths go NUL-separated on stdin, each prefixed with './' (else rsync would
 * skip names starting with '#' or ';' as comments), byte-exact (no --iconv); rsync escapes
 * control characters in its output (`\#012`), which the parsers undo.
 */

import { resolve } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, classifyPullFailure, unescapeRsyncName } from '../errors.js';
import type { RunResult } from '../proc/run.js';
import { remoteOps } from './ops.js';
import { prepareLocalMeta } from './ops-local.js';
import { normalizeRelPath } from './paths.js';
import { failureContext } from './script.js';
import { META_DIR, isMetaPath } from '../../../shared/layout.js';
import { LineReader } from '../proc/split.js';
import { emptyStats, parseItemLine, parseProgressLine, parseStatsLine, type TransferredItem } from './progress.js';
import {
  rsyncFetchArgs,
  rsyncTreePullArgs,
  rsyncTreePushArgs,
  stagingRoot,
  transferArgs,
  type Direction,
} from './rsync-args.js';
import { relativize, rsyncRun } from './rsync-run.js';

export type { TransferredItem } from './progress.js';
export { parseProgressLine, parseItemLine } from './progress.js';

export {
  MIN_RSYNC_VERSION,
  SAFE_PARENT_RSYNC_VERSION,
  parseRsyncVersion,
  rsyncSymlinkWarning,
  rsyncVersion,
  versionAtLeast,
} from './rsync-version.js';

// The content comparison (rsync-compare.ts), for the cycle and the engine.
export { rsyncSameContent, type SameContentOptions } from './rsync-compare.js';

export interface PushProgress {
  bytes: number;
  percent: number | null;
  rateBps: number;
  filesDone: number;
  /** The files (and folders) rsync has found to consider so far, when it says (`to-chk=N/TOTAL`). */
  filesKnown?: number;
}

/** What one transfer run needs, in either direction. */
interface TransferOptions {
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  /**
   * Relative paths: each is copied if it exists on the sending side, or DELETED
   * on the receiving side if missing on the sender (rsync --delete-missing-args).
   * A listed directory is created (not recursed into). Paths in .lipsync/ and
   * invalid paths (absolute, '..') are skipped with a warning.
   */
  paths: AsyncIterable<string> | string[];
  /**
   * Relative to the RECEIVING root, e.g. '.lipsync/trash/2026-11-25/133012345':
   * files replaced or deleted there are moved into it (--backup --backup-dir),
   * keeping their relative paths.
   */
  trashDir: string;
  bwLimitKBps?: number;
  /** Compress the data on the link (rsync -z); only for an ssh remote (see rsync-args.ts). */
  compress?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PushProgress) => void;
  onFile?: (f: TransferredItem) => void;
  /**
   * A push: the server's root was checked and its meta dirs made just before (by the
   * lock, see RemoteOps.lock), so prepareMeta is not run again.
   */
  metaReady?: boolean;
}

/**
 * A push of whole new folders (see rsyncPushTrees): each listed path is a folder
 * sent with everything below it (`-r`) into the staging folder `stagingDir`
 * (relative to the remote root, inside .lipsync/), keeping its relative path.
 */
export interface TreePushOptions extends Omit<TransferOptions, 'trashDir' | 'paths'> {
  /** The folders, relative to both roots. */
  paths: string[];
  /** Relative to the remote root, e.g. '.lipsync/incoming/p0123-abcd'. */
  stagingDir: string;
  /** rsync --exclude patterns equivalent to the pair's excludes (Excluder.rsyncRules). */
  excludes: readonly string[];
}

/** Local → remote: the sender is the local root, the trash is on the server. */
export type PushOptions = TransferOptions;

/** Remote → local: the sender is the server, the trash is in the local root. */
export type PullOptions = TransferOptions;

export interface PushResult {
  ok: boolean;
  /** Capped to MAX_ITEMS in memory; use onFile for more. */
  items: TransferredItem[];
  itemCount: number;
  /** File data actually sent (--stats 'Literal data'). */
  literalBytes: number;
  /** Regular files rsync transferred (--stats), when it said. */
  filesTransferred?: number;
  error?: LipsyncError;
  warnings: LipsyncError[];
}

/** A pull's result: the same shape as a push's. */
export type PullResult = PushResult;

export const MAX_ITEMS = 10_000;

/**
 * The path list as NUL-terminated chunks of ~64 KiB, skipping invalid and
 * meta paths; collects the parent directories of the listed paths in `parents`.
 */
async function* nulList(
  paths: AsyncIterable<string> | string[],
  skipped: string[],
  parents: Set<string>,
): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const p of paths) {
    let rel: string;
    try {
      rel = normalizeRelPath(p);
    } catch {
      skipped.push(p);
      continue;
    }
    if (isMetaPath(rel)) {
      skipped.push(p);
      continue;
    }
    for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) parents.add(rel.slice(0, i));
    // './': rsync drops --files-from lines starting with '#' or ';' as comments,
    // even with --from0; the prefix is stripped again (names are reported without it).
    const b = Buffer.from(`./${rel}\0`, 'utf8');
    parts.push(b);
    size += b.length;
    if (size >= 64 * 1024) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

/** The words that differ between the directions, in messages. */
function words(direction: Direction) {
  return direction === 'push'
    ? { sent: 'sent', toSend: 'to send', deleteWhere: 'on the remote', beforeSent: 'before they could be sent' }
    : {
        sent: 'fetched',
        toSend: 'to fetch',
        deleteWhere: 'here',
        beforeSent: 'on the server before they could be fetched',
      };
}

/**
 * One rsync run in either direction, for rsyncPush and rsyncPull. Never
 * rejects: failures are in `result.error` (ok:false).
 */
async function runTransfer(
  direction: Direction | 'push-tree' | 'pull-tree',
  o: PushOptions | PullOptions | TreePushOptions,
): Promise<PushResult> {
  const pulls = direction === 'pull' || direction === 'pull-tree';
  const w = words(pulls ? 'pull' : 'push');
  const items: TransferredItem[] = [];
  const warnings: LipsyncError[] = [];
  let itemCount = 0;
  const fail = (error: LipsyncError): PushResult => ({ ok: false, items, itemCount, literalBytes: 0, error, warnings });

  let args: string[];
  try {
    args =
      direction === 'push-tree'
        ? rsyncTreePushArgs(o as TreePushOptions)
        : direction === 'pull-tree'
          ? rsyncTreePullArgs(o as TreePushOptions)
          : transferArgs(direction, o as PushOptions);
  } catch (e) {
    return fail(e instanceof LipsyncError ? e : new LipsyncError('unknown', String(e)));
  }
  if (o.signal?.aborted) return fail(new LipsyncError('cancelled', 'The transfer was cancelled.'));

  // The receiver's temp and partial dirs must exist (rsync creates neither);
  // this also checks the receiver's root exists, so an unmounted disk is
  // never written to. (A pull's missing remote root makes rsync stop before
  // deleting anything: see classifyPullFailure.)
  try {
    if (!pulls) {
      if (!o.metaReady) await remoteOps(o.remote, o.ssh).prepareMeta();
    } else await prepareLocalMeta(o.localRoot);
  } catch (e) {
    return fail(e instanceof LipsyncError ? e : new LipsyncError('unknown', (e as Error).message, { cause: e }));
  }

  const stats = emptyStats();
  const undeletable: string[] = [];
  const skipped: string[] = [];
  const parents = new Set<string>();
  const splitter = new LineReader((line) => {
    const item = parseItemLine(line);
    if (item) {
      itemCount++;
      if (items.length < MAX_ITEMS) items.push(item);
      o.onFile?.(item);
      return;
    }
    const p = parseProgressLine(line);
    if (p) {
      o.onProgress?.({
        bytes: p.bytes,
        percent: p.percent,
        rateBps: p.rateBps,
        filesDone: p.filesDone ?? itemCount,
        ...(p.total !== null && p.total !== undefined ? { filesKnown: p.total } : {}),
      });
      return;
    }
    if (parseStatsLine(line, stats)) return;
    const nd = /^cannot delete non-empty directory: (.*)$/.exec(line);
    if (nd) undeletable.push(unescapeRsyncName(nd[1] as string));
  });

  // A failing path producer stops rsync (run() does that); report why.
  let producerError: unknown;
  async function* input(): AsyncGenerator<Buffer> {
    try {
      yield* nulList(o.paths, skipped, parents);
    } catch (e) {
      producerError = e;
      throw e;
    }
  }

  let r: RunResult;
  try {
    r = await rsyncRun(args, {
      input: input(),
      onStdout: (c) => splitter.push(c),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (e) {
    return fail(e as LipsyncError);
  }
  splitter.end();

  if (skipped.length > 0) {
    warnings.push(
      new LipsyncError(
        'unknown',
        `${skipped.length} path${skipped.length === 1 ? ' was' : 's were'} not ${w.sent}: invalid, or inside ${META_DIR}/.`,
        {
          files: skipped.slice(0, 1000),
        },
      ),
    );
  }
  if (undeletable.length > 0) {
    warnings.push(
      new LipsyncError(
        'partial-transfer',
        `Some folders could not be deleted ${w.deleteWhere} because they still hold protected files.`,
        {
          files: undeletable,
        },
      ),
    );
  }

  const roots = [resolve(o.localRoot), o.remote.path];
  // A folder push names the receiver's files inside the staging folder: relative to it first.
  if (direction === 'push-tree') roots.unshift(stagingRoot(o.remote.path, (o as TreePushOptions).stagingDir));
  if (direction === 'pull-tree') roots.unshift(stagingRoot(resolve(o.localRoot), (o as TreePushOptions).stagingDir));
  const literalBytes = stats.literalBytes ?? 0;
  const done = (ok: boolean, error?: LipsyncError): PushResult => {
    if (error) error.files = relativize(error.files, roots);
    const res: PushResult = { ok, items, itemCount, literalBytes, warnings };
    if (stats.filesTransferred !== null) res.filesTransferred = stats.filesTransferred;
    if (error) res.error = error;
    return res;
  };

  if (producerError !== undefined) {
    const e =
      producerError instanceof LipsyncError
        ? producerError
        : new LipsyncError(
            'unknown',
            `The list of paths ${w.toSend} failed: ${(producerError as Error)?.message ?? String(producerError)}`,
            { cause: producerError },
          );
    return done(false, e);
  }
  if (o.signal?.aborted)
    return done(false, new LipsyncError('cancelled', 'The transfer was cancelled.', { detail: r.stderr }));
  if (r.code === 0) return done(true);
  const error = !pulls
    ? classifyFailure('rsync', r.code, r.stderr, failureContext(o.remote, o.ssh))
    : classifyPullFailure(r.code, r.stderr, failureContext(o.remote, o.ssh), resolve(o.localRoot));
  if (r.code === 24 && error.kind === 'vanished' && error.files === undefined) {
    warnings.push(error);
    return done(true);
  }
  if (r.code === 24 && error.kind === 'vanished') {
    // rsync also reports the absent parents (on the sender) of a deleted path
    // (a/b for a listed a/b/c that is gone with its folders) as "vanished": not real ones.
    const files = (relativize(error.files, roots) ?? []).filter((f) => !parents.has(f));
    if (files.length > 0) {
      warnings.push(
        new LipsyncError(
          'vanished',
          `${files.length === 1 ? 'One file' : `${files.length} files`} disappeared ${w.beforeSent} (changed while syncing); they will be picked up next time.`,
          {
            files,
            ...(error.detail !== undefined ? { detail: error.detail } : {}),
          },
        ),
      );
    }
    return done(true);
  }
  return done(false, error);
}

/**
 * Pushes `paths` with one rsync run. Never rejects: failures are in
 * `result.error` (ok:false). Exit 24 (files vanished while sending) is ok with
 * a 'vanished' warning; exit 23 is ok:false with 'partial-transfer' (or
 * 'permission-denied') naming the files, while `items` still lists what did
 * transfer.
 */
export function rsyncPush(o: PushOptions): Promise<PushResult> {
  return runTransfer('push', o);
}

/**
 * Pulls `paths` from the remote root into the local root with one rsync run:
 * the mirror of rsyncPush (same flags, roles swapped). Each path is fetched if
 * it exists remotely, or deleted locally if it does not; every local file
 * replaced or deleted is kept in `localRoot/trashDir`. Files are written in
 * `localRoot/.lipsync` and renamed into place (an interrupted file is kept
 * in `.lipsync/partial`), so no half-written file is ever visible in the tree.
 * Never rejects; results and errors as for rsyncPush (items are itemized from
 * the receiving side: '>f...' for a received file, '*deleting' for a deletion).
 * A missing remote root fails with 'remote-missing' and deletes nothing.
 */
export function rsyncPull(o: PullOptions): Promise<PullResult> {
  return runTransfer('pull', o);
}

/**
 * Pushes whole new folders with one recursive rsync run into a staging folder in
 * the server's .lipsync/ (rsyncTreePushArgs); the caller moves each folder into
 * place and removes the staging folder. Results and errors as for rsyncPush;
 * `items` name paths relative to the roots (the staging folder is not in them).
 */
export function rsyncPushTrees(o: TreePushOptions): Promise<PushResult> {
  return runTransfer('push-tree', o);
}

/**
 * Pulls whole new server folders with one recursive rsync run into a staging folder in
 * the local .lipsync/ (rsyncTreePullArgs; `stagingDir` is relative to the LOCAL root and
 * must exist); the caller checks what arrived, moves each folder into place and removes
 * the staging folder (cycle/new-remote-folders.ts). Results and errors as for rsyncPull.
 */
export function rsyncPullTrees(o: TreePushOptions): Promise<PullResult> {
  return runTransfer('pull-tree', o);
}

/**
 * Fetches one file of the remote root (`rel`, e.g. a version in `.lipsync/trash/…`) to the
 * local file `dest` (a temp name the caller then renames into place). Rejects with the
 * error table's words when rsync fails.
 */
export async function rsyncFetchFile(remote: RemoteSpec, ssh: SshOptions, rel: string, dest: string): Promise<void> {
  const r = await rsyncRun(rsyncFetchArgs(remote, ssh, rel, dest));
  if (r.code !== 0) throw classifyFailure('rsync', r.code, r.stderr, failureContext(remote, ssh));
}
