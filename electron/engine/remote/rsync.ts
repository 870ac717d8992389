/**
 * Pushing a list of changed paths with ONE rsync run.
 *
 * The command (see rsyncPushArgs for the exact list and why each flag is there):
 *
 *   rsync -s -l -p -t -8 --files-from=- --from0 --no-implied-dirs
 *         --delete-missing-args --force --backup --backup-dir=TRASH
 *         --partial-dir=ROOT/.lipsync/partial --temp-dir=ROOT/.lipsync/tmp
 *         --exclude=/.lipsync/*** --info=progress2 --out-format=MARKER%i|%l|%n
 *         --stats [--bwlimit=N] [-e SSH] LOCALROOT/ [host:]ROOT/
 *
 * Paths go NUL-separated on stdin, each prefixed with './' (else rsync would
 * skip names starting with '#' or ';' as comments), byte-exact (no --iconv); rsync escapes
 * control characters in its output (`\#012`), which the parsers undo.
 */

import { resolve } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, unescapeRsyncName, type FailureContext } from '../errors.js';
import { run, type RunResult } from '../proc/run.js';
import { rsyncShellArg } from './ssh.js';
import { remoteOps, normalizeRelPath, META_DIR } from './ops.js';
import {
  LineSplitter,
  OUT_FORMAT,
  emptyStats,
  parseItemLine,
  parseProgressLine,
  parseStatsLine,
  type TransferredItem,
} from './progress.js';

export type { TransferredItem } from './progress.js';
export { parseProgressLine, parseItemLine } from './progress.js';

/** Needs --delete-missing-args (3.0) and --info=progress2 (3.1). */
export const MIN_RSYNC_VERSION = '3.1.0';

/** '3.2.7' from `rsync  version 3.2.7  protocol version 31` (or 'rsync version v3.2.7 ...'); null if absent. */
export function parseRsyncVersion(text: string): string | null {
  const m = /\bversion\s+v?(\d+\.\d+(?:\.\d+)?[0-9A-Za-z.-]*)/.exec(text);
  return m ? (m[1] as string) : null;
}

/** The local rsync's version, or null when `cmd` cannot be run. */
export async function rsyncVersion(cmd = 'rsync'): Promise<string | null> {
  try {
    const r = await run(cmd, ['--version'], { timeoutMs: 10_000 });
    return parseRsyncVersion(r.stdout);
  } catch {
    return null;
  }
}

/** Compares dotted versions numerically ('3.10.0' > '3.9.9'); suffixes like 'pre1' are ignored. */
export function versionAtLeast(v: string, min: string): boolean {
  const nums = (s: string) => s.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const a = nums(v);
  const b = nums(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export interface PushProgress {
  bytes: number;
  percent: number | null;
  rateBps: number;
  filesDone: number;
}

export interface PushOptions {
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  /**
   * Relative paths: each is uploaded if it exists locally, or DELETED on the
   * remote if missing locally (rsync --delete-missing-args). A listed
   * directory is created (not recursed into). Paths in .lipsync/ and invalid
   * paths (absolute, '..') are skipped with a warning.
   */
  paths: AsyncIterable<string> | string[];
  /**
   * Relative to the remote root, e.g. '.lipsync/trash/2026-11-25/133012-345':
   * replaced and deleted remote files are moved there (--backup --backup-dir),
   * keeping their relative paths.
   */
  trashDir: string;
  bwLimitKBps?: number;
  signal?: AbortSignal;
  onProgress?: (p: PushProgress) => void;
  onFile?: (f: TransferredItem) => void;
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

export const MAX_ITEMS = 10_000;

function rootWithSlash(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

function metaPath(root: string, sub: string): string {
  return `${root === '/' ? '' : root}/${META_DIR}/${sub}`;
}

/** The rsync arguments for a push (stdin carries the NUL-separated path list). */
export function rsyncPushArgs(
  o: Pick<PushOptions, 'localRoot' | 'remote' | 'ssh' | 'trashDir' | 'bwLimitKBps'>,
): string[] {
  const root = o.remote.path;
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
    // High-bit bytes unescaped in output (control chars are still escaped as \#ooo).
    '-8',
    '--files-from=-',
    '--from0',
    // Missing parents of a listed path are created with default attributes;
    // existing parents on the receiver are left alone (not replaced, not re-timed).
    '--no-implied-dirs',
    // A listed path missing locally is deleted on the receiver (recursively, for a directory).
    '--delete-missing-args',
    // Needed to replace a non-empty directory by a file (a deletion that is not --delete).
    '--force',
    // Replaced and deleted files go to the trash, relative to the destination root.
    '--backup',
    `--backup-dir=${trash}`,
    // Absolute, so rsync creates no per-directory partial dirs in the user's tree.
    `--partial-dir=${metaPath(root, 'partial')}`,
    `--temp-dir=${metaPath(root, 'tmp')}`,
    // Never send into, or delete from, our own meta dir ('***' also matches
    // listed paths inside it: a plain '/.lipsync/' would not, with --files-from).
    `--exclude=/${META_DIR}/***`,
    '--info=progress2',
    `--out-format=${OUT_FORMAT}`,
    '--stats',
  ];
  if (o.bwLimitKBps !== undefined && o.bwLimitKBps > 0)
    args.push(`--bwlimit=${Math.max(1, Math.round(o.bwLimitKBps))}`);
  if (o.remote.kind === 'ssh') {
    args.push('-e', rsyncShellArg(o.remote, o.ssh));
    const host = o.remote.host.includes(':') ? `[${o.remote.host}]` : o.remote.host;
    args.push(rootWithSlash(resolve(o.localRoot)), `${host}:${rootWithSlash(root)}`);
  } else {
    args.push(rootWithSlash(resolve(o.localRoot)), rootWithSlash(root));
  }
  return args;
}

function isMetaPath(rel: string): boolean {
  return rel === META_DIR || rel.startsWith(`${META_DIR}/`);
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

function failureContext(remote: RemoteSpec, ssh: SshOptions): FailureContext {
  const ctx: FailureContext = { path: remote.path };
  if (remote.kind === 'ssh') {
    ctx.host = remote.host;
    if (remote.user !== undefined) ctx.user = remote.user;
    if (remote.port !== undefined) ctx.port = remote.port;
    if (ssh.identityFile !== undefined) ctx.identityFile = ssh.identityFile;
  }
  return ctx;
}

/**
 * Pushes `paths` with one rsync run. Never rejects: failures are in
 * `result.error` (ok:false). Exit 24 (files vanished while sending) is ok with
 * a 'vanished' warning; exit 23 is ok:false with 'partial-transfer' (or
 * 'permission-denied') naming the files, while `items` still lists what did
 * transfer.
 */
export async function rsyncPush(o: PushOptions): Promise<PushResult> {
  const items: TransferredItem[] = [];
  const warnings: LipsyncError[] = [];
  let itemCount = 0;
  const fail = (error: LipsyncError): PushResult => ({ ok: false, items, itemCount, literalBytes: 0, error, warnings });

  let args: string[];
  try {
    args = rsyncPushArgs(o);
  } catch (e) {
    return fail(e instanceof LipsyncError ? e : new LipsyncError('unknown', String(e)));
  }
  if (o.signal?.aborted) return fail(new LipsyncError('cancelled', 'The transfer was cancelled.'));

  // The temp and partial dirs must exist (rsync creates neither); this also
  // checks the root exists, so an unmounted disk is never written to.
  const ops = remoteOps(o.remote, o.ssh);
  try {
    await ops.prepareMeta();
  } catch (e) {
    return fail(e instanceof LipsyncError ? e : new LipsyncError('unknown', (e as Error).message, { cause: e }));
  }

  const stats = emptyStats();
  const undeletable: string[] = [];
  const skipped: string[] = [];
  const parents = new Set<string>();
  const splitter = new LineSplitter((line) => {
    const item = parseItemLine(line);
    if (item) {
      itemCount++;
      if (items.length < MAX_ITEMS) items.push(item);
      o.onFile?.(item);
      return;
    }
    const p = parseProgressLine(line);
    if (p) {
      o.onProgress?.({ bytes: p.bytes, percent: p.percent, rateBps: p.rateBps, filesDone: p.filesDone ?? itemCount });
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
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return fail(
        new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', {
          fix: 'Install rsync 3.1 or newer, e.g. `sudo apt install rsync`.',
          cause: e,
        }),
      );
    }
    return fail(new LipsyncError('unknown', `Could not start rsync: ${(e as Error).message}`, { cause: e }));
  }
  splitter.end();

  if (skipped.length > 0) {
    warnings.push(
      new LipsyncError(
        'unknown',
        `${skipped.length} path${skipped.length === 1 ? ' was' : 's were'} not sent: invalid, or inside ${META_DIR}/.`,
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
        'Some folders could not be deleted on the remote because they still hold protected files.',
        {
          files: undeletable,
        },
      ),
    );
  }

  const roots = [resolve(o.localRoot), o.remote.path];
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
            `The list of paths to send failed: ${(producerError as Error)?.message ?? String(producerError)}`,
            { cause: producerError },
          );
    return done(false, e);
  }
  if (o.signal?.aborted)
    return done(false, new LipsyncError('cancelled', 'The transfer was cancelled.', { detail: r.stderr }));
  if (r.code === 0) return done(true);
  const ctx = failureContext(o.remote, o.ssh);
  const error = classifyFailure('rsync', r.code, r.stderr, ctx);
  if (r.code === 24 && error.kind === 'vanished' && error.files === undefined) {
    warnings.push(error);
    return done(true);
  }
  if (r.code === 24 && error.kind === 'vanished') {
    // rsync also reports the absent local parents of a deleted path (a/b for a
    // listed a/b/c that is gone with its folders) as "vanished": not real ones.
    const files = (relativize(error.files, roots) ?? []).filter((f) => !parents.has(f));
    if (files.length > 0) {
      warnings.push(
        new LipsyncError(
          'vanished',
          `${files.length === 1 ? 'One file' : `${files.length} files`} disappeared before they could be sent (changed while syncing); they will be picked up next time.`,
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
