/**
 * statRemote: the state of given paths under a remote root, for both kinds of
 * remote (see list.ts for the listing of a folder). On a server, one remote
 * command per call: GNU find (`-printf`, exact) or, without it, rsync's
 * `--list-only` (whole seconds, no inode; rsync-list.ts). On a local remote,
 * node:fs (local-stat.ts).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as fsJoin } from 'node:path';
import type { RemoteCapabilities, RemoteSpec, RemoteStat, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, pathsDenied } from '../errors.js';
import { LineSplitter } from '../proc/split.js';
import { FIND_STAT_FORMAT, FindStatParser } from './find-parse.js';
import { parseRsyncListLine } from './rsync-list-parse.js';
import { rsyncChangeDirError, rsyncLinkStatErrors, rsyncListEnv, rsyncSource, runRsync } from './rsync-list.js';
import { localStat, requireLocalDir } from './local-stat.js';
import { absPath, normalizeRel, normalizeRoot } from './paths.js';
import { GatedOutput } from './gated-output.js';
import { shQuote } from './ssh.js';
import {
  EXIT_ROOT_MISSING,
  PRINT_STREAM_MARKER,
  failureContext,
  requireRootScript,
  runScript,
  scriptFailure,
  type SshRemote,
} from './script.js';

const STAT_TIMEOUT_MS = 120_000;
/** Paths per find invocation (the shell rebuilds "$@" per path: keep it small) and per ssh call. */
const STAT_PATHS_PER_FIND = 5000;
const STAT_BYTES_PER_FIND = 64 * 1024;
const STAT_PATHS_PER_CALL = 20_000;
const STAT_BYTES_PER_CALL = 4 * 1024 * 1024;

/**
 * The statRemote shell function: one find prints the paths that exist; only when
 * some did not (find exits 1) is each of those told apart as missing (M) or
 * inaccessible (E: a parent cannot be searched). Linear in the number of paths;
 * any other failure of find (126/127: it could not run) fails the script, so an
 * existing path is never reported missing.
 */
const STAT_FUNCTION = `
lipsync_stat() {
  find "$@" -maxdepth 0 -printf '${FIND_STAT_FORMAT}' 2>/dev/null
  rc=$?
  [ "$rc" -eq 0 ] && return 0
  if [ "$rc" -ne 1 ]; then echo "lipsync: find failed with status $rc" >&2; exit ${EXIT_ROOT_MISSING}; fi
  last=
  for p do
    if [ -e "$p" ] || [ -L "$p" ]; then continue; fi
    d=\${p%/*}
    if [ "$d" != "$last" ] || [ -z "$last" ]; then
      last=$d
      while :; do
        [ -z "$d" ] && d=/
        if [ -e "$d" ] || [ "$d" = / ]; then break; fi
        d=\${d%/*}
      done
      if [ -d "$d" ] && [ ! -x "$d" ]; then tag=E; else tag=M; fi
    fi
    printf '%s\\0%s\\0' "$tag" "$p"
  done
  return 0
}`;

function chunkBy<T>(items: T[], maxCount: number, maxBytes: number, size: (t: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = size(it);
    if (cur.length > 0 && (cur.length >= maxCount || bytes + n > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Where each path stands in `paths` (a path asked for twice is answered twice), in first-seen order. */
function indexByPath(paths: string[]): Map<string, number[]> {
  const indexOf = new Map<string, number[]>();
  paths.forEach((p, i) => {
    const list = indexOf.get(p);
    if (list) list.push(i);
    else indexOf.set(p, [i]);
  });
  return indexOf;
}

/**
 * The state of each path (relative to `root`, '' = the root), in the order
 * given; null when it does not exist (or is a socket, fifo or device), and null
 * when a folder above it inside the root is a symlink, a file or absent: a
 * symlink is never followed (N1, N5 of docs/sync-semantics.md), while find,
 * lstat and rsync's sender all follow a symlinked parent. The folders above
 * the paths are stat'ed in the same remote command (each once); their states
 * are put into `above` when given. One remote command per call (split in
 * several for huge lists; the rsync fallback needs a second one when the root
 * itself is asked for). Throws a LipsyncError 'permission-denied' (with
 * `files`) when a path can't be looked at, rather than calling it missing.
 */
export async function statRemote(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  paths: string[],
  caps: RemoteCapabilities,
  above?: Map<string, RemoteStat | null>,
): Promise<(RemoteStat | null)[]> {
  const r = normalizeRoot(root);
  const rels = paths.map(normalizeRel);
  if (rels.length === 0) return [];
  const asked = new Set(rels);
  const parents: string[] = [];
  const seen = new Set<string>();
  for (const rel of rels) {
    for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
      const a = rel.slice(0, i);
      if (seen.has(a)) continue;
      seen.add(a);
      if (!asked.has(a)) parents.push(a);
    }
  }
  const all = parents.length ? [...rels, ...parents] : rels;
  let stats: (RemoteStat | null)[];
  if (remote.kind === 'local') {
    await requireLocalDir(r);
    stats = [];
    for (const rel of all) stats.push(await localStat(absPath(r, rel)));
  } else {
    stats = caps.gnuFind ? await statWithFind(remote, ssh, r, all) : await statNestedWithRsync(remote, ssh, r, all);
  }
  if (!seen.size) return stats;
  const kindOf = new Map<string, RemoteStat | null>();
  all.forEach((p, i) => kindOf.set(p, stats[i] ?? null));
  if (above) for (const a of seen) above.set(a, kindOf.get(a) ?? null);
  return rels.map((rel, i) => {
    for (let j = rel.indexOf('/'); j !== -1; j = rel.indexOf('/', j + 1)) {
      if (kindOf.get(rel.slice(0, j))?.kind !== 'dir') return null;
    }
    return stats[i] ?? null;
  });
}

async function statWithFind(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const results: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  const indexOf = indexByPath(rels.map((rel) => absPath(root, rel)));
  const unique = [...indexOf.keys()];
  const denied: string[] = [];
  const calls = chunkBy(unique, STAT_PATHS_PER_CALL, STAT_BYTES_PER_CALL, (p) => Buffer.byteLength(p) + 8);
  for (const call of calls) {
    const finds = chunkBy(call, STAT_PATHS_PER_FIND, STAT_BYTES_PER_FIND, (p) => Buffer.byteLength(p) + 8);
    const script = [
      requireRootScript(root),
      STAT_FUNCTION,
      PRINT_STREAM_MARKER,
      ...finds.map((f) => `lipsync_stat ${f.map(shQuote).join(' ')}`),
    ].join('\n');
    const parser = new FindStatParser();
    const out = new GatedOutput((data) => {
      for (const rec of parser.push(data)) {
        const idx = indexOf.get(rec.path);
        if (!idx) continue;
        if (rec.tag === 'F') for (const i of idx) results[i] = rec.stat;
        else if (rec.tag === 'E') denied.push(rec.path);
      }
    });
    const res = await runScript(remote, ssh, script, { timeoutMs: STAT_TIMEOUT_MS, onStdout: out.onStdout });
    // find exits 1 when a path vanished between the test and find: that path is simply missing.
    const onlyVanished =
      res.code === 1 &&
      res.stderr
        .split('\n')
        .filter((l) => l.trim() !== '')
        .every((l) => /No such file or directory|Not a directory/.test(l));
    if ((res.code !== 0 && !onlyVanished) || res.timedOut) throw scriptFailure(remote, ssh, res, root);
    if (out.error !== null || !out.passed) {
      throw new LipsyncError('unknown', `Unexpected answer from ${remote.host} while checking files.`, {
        detail: `${String(out.error ?? 'no output')}\n${res.stderr.slice(-2000)}`,
      });
    }
  }
  if (denied.length > 0) throw deniedError(remote, root, denied);
  return results;
}

/**
 * statWithRsync for a list that may hold a path and paths below it: rsync's listing
 * drops a listed symlink `a` when `a/b` is listed too (it follows `a` for `a/b` and
 * the two entries clash), which would report the link as absent. So a path found
 * missing while something below it was found is asked again without what is below
 * it (a second call, rarely a third: one per level of such links).
 */
async function statNestedWithRsync(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const out: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  let pending = rels.map((_, i) => i);
  while (pending.length) {
    const got = await statWithRsync(
      remote,
      ssh,
      root,
      pending.map((i) => rels[i]!),
    );
    const found = new Set<string>();
    pending.forEach((i, k) => {
      out[i] = got[k] ?? null;
      if (got[k]) found.add(rels[i]!);
    });
    const again = pending.filter((i) => {
      if (out[i]) return false;
      const prefix = `${rels[i]!}/`;
      for (const f of found) if (f.startsWith(prefix)) return true;
      return false;
    });
    if (again.length === pending.length) break; // no progress: they stay missing
    pending = again;
  }
  return out;
}

/** 'permission-denied' for absolute paths under `root` that can't be looked at. */
function deniedError(remote: SshRemote, root: string, absPaths: string[]): LipsyncError {
  const prefix = root === '/' ? '/' : `${root}/`;
  const files = absPaths.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p));
  return pathsDenied(files, root, remote.host);
}

async function statWithRsync(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const results: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  const indexOf = indexByPath(rels);
  const ctx = failureContext(remote, ssh, root);
  const env = rsyncListEnv();

  // The root itself: listing '.' with --files-from would list its whole content.
  const rootIdx = indexOf.get('');
  if (rootIdx) {
    indexOf.delete('');
    const res = await runRsync(
      ['-s', '-l', '-d', '-8', '--list-only', '--exclude=*', ...rsyncSource(remote, ssh, root)],
      env,
    );
    if (res.code !== 0) {
      throw rsyncChangeDirError(remote, root, res.stderr) ?? classifyFailure('rsync', res.code, res.stderr, ctx);
    } else {
      for (const line of res.stdout.split('\n')) {
        const e = parseRsyncListLine(line);
        if (e && e.name === '.') for (const i of rootIdx) results[i] = e.stat;
      }
    }
  }
  if (indexOf.size === 0) return results;

  const tmp = await mkdtemp(fsJoin(tmpdir(), 'lipsync-list-'));
  try {
    const input = Buffer.from([...indexOf.keys()].map((rel) => `./${rel}\0`).join(''));
    const splitter = new LineSplitter();
    const onLine = (line: string) => {
      const e = parseRsyncListLine(line, (name) => indexOf.has(name));
      if (!e) return;
      const idx = indexOf.get(e.name);
      if (idx) for (const i of idx) results[i] = e.stat;
    };
    const res = await runRsync(
      [
        '-s',
        '-l',
        '-d',
        '-8',
        '--list-only',
        '--no-implied-dirs',
        '--files-from=-',
        '--from0',
        ...rsyncSource(remote, ssh, root),
        // --files-from needs a destination; --list-only never writes to it.
        fsJoin(tmp, 'unused') + '/',
      ],
      env,
      input,
      (chunk) => splitter.push(chunk).forEach(onLine),
    );
    splitter.end().forEach(onLine);
    if (res.code !== 0) {
      const errs = rsyncLinkStatErrors(res.stderr);
      const bad = errs.filter((e) => !/No such file or directory|Not a directory/.test(e.reason));
      const rootError = rsyncChangeDirError(remote, root, res.stderr);
      if (rootError) throw rootError;
      if (res.code !== 23 || errs.length === 0) throw classifyFailure('rsync', res.code, res.stderr, ctx);
      if (bad.length > 0) {
        throw deniedError(
          remote,
          root,
          bad.map((b) => b.name),
        );
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return results;
}
