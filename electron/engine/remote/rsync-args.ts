/**
 * The arguments of every rsync run that moves or compares files: a push, a pull,
 * a push of whole new folders, the content comparison and the fetch of one file,
 * each flag with why it is there (the runs: rsync.ts, rsync-compare.ts).
 *
 * Push (see transferArgs for the exact list and why each flag is there):
 *
 *   rsync -s -l -p -t -8 --files-from=- --from0 --no-implied-dirs
 *         --delete-missing-args --force --backup --backup-dir=TRASH
 *         --partial-dir=ROOT/.lipsync/partial --temp-dir=.lipsync
 *         --exclude=/.lipsync/*** --info=progress2 --out-format=MARKER%i|%l|%n
 *         --stats [--bwlimit=N] [-z] [-e SSH] LOCALROOT/ [host:]ROOT/
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
import { LipsyncError } from '../errors.js';
import { rsyncShellArg } from './ssh.js';
import { normalizeRelPath, rsyncSourcePath } from './paths.js';
import { META_DIR, TEMP_DIR, isMetaPath } from '../../../shared/layout.js';
import { OUT_FORMAT } from './progress.js';
import type { PushOptions, PullOptions, TreePushOptions } from './rsync.js';
import type { SameContentOptions } from './rsync-compare.js';

export function rootWithSlash(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

function metaPath(root: string, sub: string): string {
  return `${root === '/' ? '' : root}/${META_DIR}/${sub}`;
}

/** Which way a transfer goes: push sends local → remote, pull fetches remote → local. */
export type Direction = 'push' | 'pull';

type TransferArgsOptions = Pick<PushOptions, 'localRoot' | 'remote' | 'ssh' | 'trashDir' | 'bwLimitKBps' | 'compress'>;

/** `-e SSH` (for an ssh remote) and the source or destination `[host:]PATH` of an absolute path there. */
function rsyncEndpoint(remote: RemoteSpec, ssh: SshOptions, path: string): { shell: string[]; spec: string } {
  if (remote.kind === 'ssh') {
    const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
    // The server's rsync expands wildcards in the remote path even with -s: escape them.
    return { shell: ['-e', rsyncShellArg(remote, ssh)], spec: `${host}:${rsyncSourcePath(path)}` };
  }
  return { shell: [], spec: path };
}

/** `-e SSH` (for an ssh remote) and the remote endpoint, `[host:]ROOT/`. */
function remoteEndpoint(remote: RemoteSpec, ssh: SshOptions): { shell: string[]; spec: string } {
  return rsyncEndpoint(remote, ssh, rootWithSlash(remote.path));
}

/** `--bwlimit=N` for a limit in KiB/s (rsync counts 1024 bytes); none for no limit. */
function bwLimitArgs(kbps: number | undefined): string[] {
  return kbps !== undefined && kbps > 0 ? [`--bwlimit=${Math.max(1, Math.round(kbps))}`] : [];
}

/**
 * `-z` when the transfer compresses, and only over ssh: a local-path remote (a mounted
 * disk) has no link to save bytes on, only CPU to spend. Plain `-z`, no --compress-choice:
 * when both ends are rsync >= 3.2 they negotiate the strongest algorithm both have (zstd,
 * lz4, zlibx, zlib; zlibx and zlib are built into every build, so a server without zstd
 * or lz4 settles on zlibx), and an older peer (protocol < 31, no negotiation) is taken to
 * have zlib, which -z has meant since rsync 2.x. No --skip-compress either: rsync 3.2+
 * has a default list of already-compressed suffixes (gz, zip, jpg, mp4, zst, …; `man
 * rsync`), but its per-file use is compiled out there (token.c set_compression: "No
 * compression algorithms currently allow mid-stream changing of the level"), so every
 * file goes through the codec. That costs nothing measurable: 20 MB of random bytes named
 * .gz/.zip/.jpg took as long with -z as without (bench/compress.mjs, 10 Mbit/s link).
 */
function compressArgs(compress: boolean | undefined, remote: RemoteSpec): string[] {
  return compress && remote.kind === 'ssh' ? ['-z'] : [];
}

/** The staging folder's absolute path on the receiver; throws unless it is inside the meta dir. */
export function stagingRoot(remoteRoot: string, stagingDir: string): string {
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
export function rsyncTreePushArgs(o: TreeArgsOptions): string[] {
  const target: RemoteSpec = { ...o.remote, path: stagingRoot(o.remote.path, o.stagingDir) };
  const { shell, spec } = remoteEndpoint(target, o.ssh);
  return [...treeArgs(o), ...shell, rootWithSlash(resolve(o.localRoot)), spec];
}

/**
 * The arguments of a pull of whole new server folders into a local staging folder
 * (rsyncPullTrees; rules T3 and T4 of docs/sync-semantics.md): the mirror of
 * rsyncTreePushArgs. `-l` keeps a symlink on the server a symlink (never followed, N1, N5),
 * and `-r` never follows one either; the staging folder is new, so nothing here is replaced
 * or deleted (no --backup, --delete-missing-args or --force) and no temp or partial dir is
 * needed (an interrupted run's staging folder is removed, never resumed).
 */
export function rsyncTreePullArgs(o: TreeArgsOptions): string[] {
  const { shell, spec } = remoteEndpoint(o.remote, o.ssh);
  return [...treeArgs(o), ...shell, spec, rootWithSlash(stagingRoot(resolve(o.localRoot), o.stagingDir))];
}

type TreeArgsOptions = Pick<
  TreePushOptions,
  'localRoot' | 'remote' | 'ssh' | 'stagingDir' | 'excludes' | 'bwLimitKBps' | 'compress'
>;

/** The flags of a folder sent or fetched whole, either way (the endpoints follow them). */
function treeArgs(o: TreeArgsOptions): string[] {
  return [
    // Names and option values in rsync's protocol, never through the remote shell (as transferArgs).
    '-s',
    // -r: each listed folder with everything below it (rsync's incremental recursion
    // streams the tree: a million files never sit in one list).
    '-r',
    // Symlinks as symlinks (never followed), permissions, mtimes; no owner, group or devices.
    '-l',
    '-p',
    '-t',
    // High-bit bytes unescaped in the output.
    '-8',
    // The folders, read from our stdin (a pull forwards them to the server's sender).
    '--files-from=-',
    '--from0',
    // The listed folders' parents are created (default attributes) inside the staging folder.
    '--no-implied-dirs',
    // Never our own meta dir, nor what the pair excludes (nor files still being written).
    `--exclude=/${META_DIR}/***`,
    ...o.excludes.map((e) => `--exclude=${e}`),
    // No per-file lines (--out-format): the caller lists what arrived. Less output also
    // keeps rsync from waiting on a full pipe while the engine records the previous run.
    '--info=progress2',
    '--stats',
    ...bwLimitArgs(o.bwLimitKBps),
    // -z on a slow or distant link (the pair's setting; see compressArgs).
    ...compressArgs(o.compress, o.remote),
  ];
}

/**
 * The arguments of a transfer in either direction. Everything is the same
 * but the roles: the RECEIVER's root holds the trash (--backup-dir is
 * relative to the destination) and the partial/temp dirs.
 */
export function transferArgs(direction: Direction, o: TransferArgsOptions): string[] {
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
  // -z on a slow or distant link (the pair's setting; see compressArgs).
  args.push(...compressArgs(o.compress, o.remote));
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
  o: Pick<PullOptions, 'localRoot' | 'remote' | 'ssh' | 'trashDir' | 'bwLimitKBps' | 'compress'>,
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

/** The rsync arguments of the fetch of one file of the remote root (`rel`) to the local file `dest`. */
export function rsyncFetchArgs(remote: RemoteSpec, ssh: SshOptions, rel: string, dest: string): string[] {
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
  const { shell, spec } = rsyncEndpoint(remote, ssh, path);
  args.push(...shell, spec, dest);
  return args;
}
