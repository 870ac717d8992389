/**
 * Moving a list of changed paths with ONE rsync run, in either direction,
 * and comparing content with rsync's checksums.
 *
 * Push (see transferArgs for the exact list and why each flag is there):
 *
 *   rsync -s -l -p -t -8 --files-from=- --from0 --no-implied-dirs
 *         --delete-missing-args --force --backup --backup-dir=TRASH
 *         --partial-dir=ROOT/.lipsync/partial --temp-dir=.lipsync
 *         --exclude=/.lipsync/*** --info=progress2 --out-format=MARKER%i|%l|%n
 *         --stats [--bwlimit=N] [-e SSH] LOCALROOT/ [host:]ROOT/
 *
 * Pull: the same flags with the roles swapped, `[host:]ROOT/ LOCALROOT/`; the
 * trash (relative to the destination), partial and temp dirs are then in
 * LOCALROOT/.lipsync/.
 *
 * Compare: `rsync -n -c -s -l -8 --files-from=- --from0 --no-implied-dirs
 * --delete-missing-args --force --exclude=/.lipsync/*** --out-format=...
 * LOCALROOT/ [host:]ROOT/` (see rsyncSameContent).
 *
 * Paths go NUL-separated on stdin, each prefixed with './' (else rsync would
 * skip names starting with '#' or ';' as comments), byte-exact (no --iconv); rsync escapes
 * control characters in its output (`\#012`), which the parsers undo.
 */

import { resolve } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, classifyPullFailure, rsyncErrorFiles, unescapeRsyncName } from '../errors.js';
import { run, type RunResult } from '../proc/run.js';
import { rsyncShellArg } from './ssh.js';
import { remoteOps } from './ops.js';
import { prepareLocalMeta } from './ops-local.js';
import { normalizeRelPath, rsyncSourcePath } from './paths.js';
import { failureContext } from './script.js';
import { META_DIR, TEMP_DIR, isMetaPath } from '../../../shared/layout.js';
import { LineReader } from '../proc/split.js';
import {
  OUT_FORMAT,
  emptyStats,
  parseItemLine,
  parseProgressLine,
  parseStatsLine,
  type TransferredItem,
} from './progress.js';

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
  signal?: AbortSignal;
  onProgress?: (p: PushProgress) => void;
  onFile?: (f: TransferredItem) => void;
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

export interface SameContentOptions {
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  /** Relative paths to compare (normally files present on both sides). */
  paths: string[];
  signal?: AbortSignal;
}

export interface PushResult {
  ok: boolean;
  /** Capped to MAX_ITEMS in memory; use onFile for more. */
  items: TransferredItem[];
  itemCount: number;
  /** File data actually sent (--stats 'Literal data'). */
  literalBytes: number;
  error?: LipsyncError;
  warnings: LipsyncError[];
}

/** A pull's result: the same shape as a push's. */
export type PullResult = PushResult;

export const MAX_ITEMS = 10_000;

function rootWithSlash(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

function metaPath(root: string, sub: string): string {
  return `${root === '/' ? '' : root}/${META_DIR}/${sub}`;
}

/** Which way a transfer goes: push sends local → remote, pull fetches remote → local. */
type Direction = 'push' | 'pull';

type TransferArgsOptions = Pick<PushOptions, 'localRoot' | 'remote' | 'ssh' | 'trashDir' | 'bwLimitKBps'>;

/** `-e SSH` (for an ssh remote) and the remote endpoint, `[host:]ROOT/`. */
function remoteEndpoint(remote: RemoteSpec, ssh: SshOptions): { shell: string[]; spec: string } {
  if (remote.kind === 'ssh') {
    const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
    // The server's rsync expands wildcards in the remote path even with -s: escape them.
    return {
      shell: ['-e', rsyncShellArg(remote, ssh)],
      spec: `${host}:${rsyncSourcePath(rootWithSlash(remote.path))}`,
    };
  }
  return { shell: [], spec: rootWithSlash(remote.path) };
}

/** `--bwlimit=N` for a limit in KiB/s (rsync counts 1024 bytes); none for no limit. */
function bwLimitArgs(kbps: number | undefined): string[] {
  return kbps !== undefined && kbps > 0 ? [`--bwlimit=${Math.max(1, Math.round(kbps))}`] : [];
}

/** The staging folder's absolute path on the receiver; throws unless it is inside the meta dir. */
function stagingRoot(remoteRoot: string, stagingDir: string): string {
  const staging = normalizeRelPath(stagingDir);
  if (!isMetaPath(staging)) throw new LipsyncError('unknown', `The staging folder ${staging} is not in ${META_DIR}/.`);
  return metaPath(remoteRoot, staging.slice(META_DIR.length + 1));
}

/**
 * The arguments of a folder push into a staging folder (rsyncPushTrees). Unlike a
 * path-list push nothing on the receiver can be replaced or deleted (the staging
 * folder is new and only this run writes it), so no --backup, --delete-missing-args
 * or --force; and the files are not in the user's tree until the whole folder is
 * moved there, so rsync's temp files (`.NAME.XXXXXX` beside each file) may stay
 * where they are: no --temp-dir and no --partial-dir (an interrupted run's staging
 * folder is removed, never resumed). Measured on 10,000 small files: as fast as
 * `rsync -a DIR`, where the path-list push with its temp, partial and backup
 * folders took 1.6x as long.
 */
export function rsyncTreePushArgs(
  o: Pick<TreePushOptions, 'localRoot' | 'remote' | 'ssh' | 'stagingDir' | 'excludes' | 'bwLimitKBps'>,
): string[] {
  const args = [
    '-s',
    // -r: each listed folder with everything below it (rsync's incremental recursion
    // streams the tree: a million files never sit in one list).
    '-r',
    '-l',
    '-p',
    '-t',
    '-8',
    '--files-from=-',
    '--from0',
    // The listed folders' parents are created (default attributes) inside the staging folder.
    '--no-implied-dirs',
    `--exclude=/${META_DIR}/***`,
  ];
  for (const e of o.excludes) args.push(`--exclude=${e}`);
  // No per-file lines (--out-format): the caller lists what arrived. Less output also
  // keeps rsync from waiting on a full pipe while the engine records the previous run.
  args.push('--info=progress2', '--stats');
  args.push(...bwLimitArgs(o.bwLimitKBps));
  const target: RemoteSpec = { ...o.remote, path: stagingRoot(o.remote.path, o.stagingDir) };
  const { shell, spec } = remoteEndpoint(target, o.ssh);
  args.push(...shell, rootWithSlash(resolve(o.localRoot)), spec);
  return args;
}

/**
 * The arguments of a transfer in either direction. Everything is the same
 * but the roles: the RECEIVER's root holds the trash (--backup-dir is
 * relative to the destination) and the partial/temp dirs.
 */
function transferArgs(direction: Direction, o: TransferArgsOptions): string[] {
  const localRoot = resolve(o.localRoot);
  const receiverRoot = direction === 'push' ? o.remote.path : localRoot;
  const trash = normalizeRelPath(o.trashDir);
  const args = [
    // Protected ("secluded") args: names and option values (the remote root,
    // the backup/partial/temp dirs) travel in the rsync protocol, never through
    // the remote shell. `-s` is the spelling every rsync >= 3.0 accepts
    // (--protect-args before 3.2.4, --secluded-args after).
    '-s',
    // Symlinks as symlinks, permissions, mtimes. Not -a: no owner/group/devices,
    // and no -r: every path is listed, a listed directory is created, not recursed.
    '-l',
    '-p',
    '-t',
    // Compare mtimes to the nanosecond in the quick check (receivers >= 3.1.3; older
    // ones compare seconds): a second edit of the same size within the same second
    // must not be skipped, while unchanged files still are.
    '--modify-window=-1',
    // High-bit bytes unescaped in output (control chars are still escaped as \#ooo).
    '-8',
    // The list is read from OUR stdin; in a pull rsync forwards it to the remote sender.
    '--files-from=-',
    '--from0',
    // Missing parents of a listed path are created with default attributes;
    // existing parents on the receiver are left alone (not replaced, not re-timed).
    '--no-implied-dirs',
    // A listed path missing on the sender is deleted on the receiver (recursively, for a directory).
    '--delete-missing-args',
    // Needed to replace a non-empty directory by a file (a deletion that is not --delete).
    '--force',
    // Replaced and deleted files go to the trash, relative to the destination root.
    '--backup',
    `--backup-dir=${trash}`,
    // Absolute, so rsync creates no per-directory partial dirs in the user's tree.
    `--partial-dir=${metaPath(receiverRoot, 'partial')}`,
    // Temp files (`.NAME.XXXXXX`) go straight into the meta dir, out of the user's
    // folders. Relative to the receiver's root (its working directory), one component
    // deep: rsync >= 3.4 opens every component of that path with O_NOFOLLOW for each
    // file, several times (measured, bench/README.md: 10,000 small files took 1.5× as
    // long with an absolute --temp-dir, and `.lipsync/tmp` cost twice what `.lipsync` does).
    `--temp-dir=${TEMP_DIR}`,
    // Never send into, or delete from, our own meta dir ('***' also matches
    // listed paths inside it: a plain '/.lipsync/' would not, with --files-from).
    `--exclude=/${META_DIR}/***`,
    '--info=progress2',
    `--out-format=${OUT_FORMAT}`,
    '--stats',
  ];
  args.push(...bwLimitArgs(o.bwLimitKBps));
  const { shell, spec } = remoteEndpoint(o.remote, o.ssh);
  args.push(...shell);
  if (direction === 'push') args.push(rootWithSlash(localRoot), spec);
  else args.push(spec, rootWithSlash(localRoot));
  return args;
}

/** The rsync arguments for a push (stdin carries the NUL-separated path list). */
export function rsyncPushArgs(o: TransferArgsOptions): string[] {
  return transferArgs('push', o);
}

/**
 * The rsync arguments for a pull: the same flags as a push with the roles
 * swapped (remote root → local root); trash, partial and temp dirs are in the
 * LOCAL root's .lipsync/.
 */
export function rsyncPullArgs(
  o: Pick<PullOptions, 'localRoot' | 'remote' | 'ssh' | 'trashDir' | 'bwLimitKBps'>,
): string[] {
  return transferArgs('pull', o);
}

/**
 * The rsync arguments of the content comparison: a dry run (-n) in the push
 * direction with --checksum, so both sides hash the listed files; no -t/-p,
 * so equal content with different mtimes or modes is not itemized at all.
 */
export function rsyncCompareArgs(o: Pick<SameContentOptions, 'localRoot' | 'remote' | 'ssh'>): string[] {
  const args = [
    '-n',
    '-c',
    '-s',
    '-l',
    '-8',
    '--files-from=-',
    '--from0',
    '--no-implied-dirs',
    // A path missing locally is itemized '*deleting' (so: different), not an error.
    '--delete-missing-args',
    '--force',
    `--exclude=/${META_DIR}/***`,
    `--out-format=${OUT_FORMAT}`,
  ];
  const { shell, spec } = remoteEndpoint(o.remote, o.ssh);
  args.push(...shell, rootWithSlash(resolve(o.localRoot)), spec);
  return args;
}

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

function rsyncEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  // These would change how arguments reach the remote rsync.
  delete env.RSYNC_OLD_ARGS;
  delete env.RSYNC_PROTECT_ARGS;
  delete env.RSYNC_RSH;
  return env;
}

/** Turns rsync's absolute names back into paths relative to the pair roots where possible. */
function relativize(files: string[] | undefined, roots: string[]): string[] | undefined {
  if (!files) return files;
  return files.map((f) => {
    for (const r of roots) {
      const prefix = rootWithSlash(r);
      if (f.startsWith(prefix)) return f.slice(prefix.length).replace(/^(\.\/)+/, '');
    }
    return f;
  });
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
  direction: Direction | 'push-tree',
  o: PushOptions | PullOptions | TreePushOptions,
): Promise<PushResult> {
  const w = words(direction === 'pull' ? 'pull' : 'push');
  const items: TransferredItem[] = [];
  const warnings: LipsyncError[] = [];
  let itemCount = 0;
  const fail = (error: LipsyncError): PushResult => ({ ok: false, items, itemCount, literalBytes: 0, error, warnings });

  let args: string[];
  try {
    args =
      direction === 'push-tree' ? rsyncTreePushArgs(o as TreePushOptions) : transferArgs(direction, o as PushOptions);
  } catch (e) {
    return fail(e instanceof LipsyncError ? e : new LipsyncError('unknown', String(e)));
  }
  if (o.signal?.aborted) return fail(new LipsyncError('cancelled', 'The transfer was cancelled.'));

  // The receiver's temp and partial dirs must exist (rsync creates neither);
  // this also checks the receiver's root exists, so an unmounted disk is
  // never written to. (A pull's missing remote root makes rsync stop before
  // deleting anything: see classifyPullFailure.)
  try {
    if (direction !== 'pull') await remoteOps(o.remote, o.ssh).prepareMeta();
    else await prepareLocalMeta(o.localRoot);
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
    const runOpts: Parameters<typeof run>[2] = {
      input: input(),
      env: rsyncEnv(),
      onStdout: (c) => splitter.push(c),
      maxBuffer: 256 * 1024,
    };
    if (o.signal) runOpts.signal = o.signal;
    r = await run('rsync', args, runOpts);
  } catch (e) {
    return fail(startFailure(e));
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
  const literalBytes = stats.literalBytes ?? 0;
  const done = (ok: boolean, error?: LipsyncError): PushResult => {
    if (error) error.files = relativize(error.files, roots);
    const res: PushResult = { ok, items, itemCount, literalBytes, warnings };
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
  const error =
    direction !== 'pull'
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

function startFailure(e: unknown): LipsyncError {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    return new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', {
      fix: 'Install rsync 3.1 or newer, e.g. `sudo apt install rsync`.',
      cause: e,
    });
  }
  return new LipsyncError('unknown', `Could not start rsync: ${(e as Error).message}`, { cause: e });
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
 * Whether listed paths have the same CONTENT on both sides, by rsync alone: a
 * dry run (`-n`) in the push direction with `--checksum`, so each side hashes
 * its own files and only checksums cross the network. Without -t/-p, equal
 * content with different mtimes or modes is not itemized; any itemization
 * other than '.' (attributes only) means different: '>f' (content or size
 * differs, or missing remotely), '*deleting' (missing locally), 'cL' (symlink
 * target differs), 'cd'/'>f+++' over another type.
 *
 * Result, for every listed path (keys as given): true = same content; false =
 * different, missing on one side, unreadable (rsync error naming it), or an
 * invalid/.lipsync path. Two directories count as same (not recursed); a path
 * absent on both sides counts as same. Rejects with a LipsyncError when rsync
 * fails as a whole (unreachable, auth...), or on exit 23/24 without naming files.
 */
export async function rsyncSameContent(o: SameContentOptions): Promise<Map<string, boolean>> {
  const result = new Map<string, boolean>();
  const wanted = new Map<string, string[]>();
  for (const p of o.paths) {
    let rel: string;
    try {
      rel = normalizeRelPath(p);
    } catch {
      result.set(p, false);
      continue;
    }
    if (isMetaPath(rel)) {
      result.set(p, false);
      continue;
    }
    const originals = wanted.get(rel);
    if (originals) originals.push(p);
    else wanted.set(rel, [p]);
  }
  if (wanted.size === 0) return result;
  if (o.signal?.aborted) throw new LipsyncError('cancelled', 'The comparison was cancelled.');

  const different = new Set<string>();
  const splitter = new LineReader((line) => {
    const item = parseItemLine(line);
    if (item && wanted.has(item.path) && !item.itemize.startsWith('.')) different.add(item.path);
  });
  const list = Buffer.from([...wanted.keys()].map((rel) => `./${rel}\0`).join(''), 'utf8');
  let r: RunResult;
  try {
    const runOpts: Parameters<typeof run>[2] = {
      input: list,
      env: rsyncEnv(),
      onStdout: (c) => splitter.push(c),
      maxBuffer: 256 * 1024,
    };
    if (o.signal) runOpts.signal = o.signal;
    r = await run('rsync', rsyncCompareArgs(o), runOpts);
  } catch (e) {
    throw startFailure(e);
  }
  splitter.end();
  if (o.signal?.aborted) throw new LipsyncError('cancelled', 'The comparison was cancelled.', { detail: r.stderr });
  if (r.code !== 0) {
    const roots = [resolve(o.localRoot), o.remote.path];
    const named = r.code === 23 || r.code === 24 ? (relativize(rsyncErrorFiles(r.stderr), roots) ?? []) : [];
    if (named.length === 0) throw classifyFailure('rsync', r.code, r.stderr, failureContext(o.remote, o.ssh));
    for (const f of named) different.add(f.replace(/^(\.\/)+/, '').replace(/\/+$/, ''));
  }
  for (const [rel, originals] of wanted) for (const p of originals) result.set(p, !different.has(rel));
  return result;
}

/**
 * Fetches one file of the remote root (`rel`, e.g. a version in `.lipsync/trash/…`) to the
 * local file `dest` (a temp name the caller then renames into place). Rejects with the
 * error table's words when rsync fails.
 */
export async function rsyncFetchFile(remote: RemoteSpec, ssh: SshOptions, rel: string, dest: string): Promise<void> {
  const path = `${remote.path.replace(/\/+$/, '')}/${normalizeRelPath(rel)}`;
  const args = [
    // Names travel in rsync's protocol, never through the remote shell.
    '-s',
    // A symlink as a symlink, permissions, mtime: the version as it was.
    '-l',
    '-p',
    '-t',
    '-8',
  ];
  if (remote.kind === 'ssh') {
    const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
    args.push('-e', rsyncShellArg(remote, ssh), `${host}:${rsyncSourcePath(path)}`, dest);
  } else args.push(path, dest);
  let r: RunResult;
  try {
    r = await run('rsync', args, { env: rsyncEnv(), maxBuffer: 256 * 1024 });
  } catch (e) {
    throw startFailure(e);
  }
  if (r.code !== 0) throw classifyFailure('rsync', r.code, r.stderr, failureContext(remote, ssh));
}
