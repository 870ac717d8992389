/**
 * Versions and restore (docs/sync-semantics.md, "Versions and restore"): every version
 * an overwrite replaced or a delete removed is in its side's trash (rule S4),
 * `.lipsync/trash/YYYY-MM-DD/HHMMSSmmm/<path>` (UTC), for `trashDays`. This lists them
 * from both sides' trash and brings one back into the local folder; the pair's ordinary
 * sync then carries it to the server (the version it replaces goes to the trash first,
 * so a restore can itself be undone).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { VersionInfo } from '../../shared/api.js';
import type { RemoteSpec, SshOptions } from './types.js';
import { listRemote } from './remote/list.js';
import { rsyncFetchFile } from './remote/rsync.js';
import { LipsyncError } from './errors.js';
import { META_DIR, TRASH_DIR, isMetaPath } from '../../shared/layout.js';

/** The most trash entries read per side for one listing. */
const SCAN_LIMIT = 200_000;

/** `YYYY-MM-DD/STAMP/path` of a trash entry → its parts; null for anything else. */
export function parseTrashPath(rel: string): { day: string; stamp: string; path: string; trashedAt: number } | null {
  const m = /^(\d{4}-\d{2}-\d{2})\/([^/]+)\/(.+)$/.exec(rel);
  if (!m) return null;
  const [, day, stamp, path] = m as unknown as [string, string, string, string];
  if (path.split('/').some((c) => c === '' || c === '.' || c === '..')) return null;
  const t = /^(\d{2})(\d{2})(\d{2})(\d{3})$/.exec(stamp);
  const trashedAt = Date.parse(t ? `${day}T${t[1]}:${t[2]}:${t[3]}.${t[4]}Z` : `${day}T00:00:00Z`);
  if (Number.isNaN(trashedAt)) return null;
  return { day, stamp, path, trashedAt };
}

/** The trash folder of a new replacement or move, relative to a root (rule S4); every writer names it here. */
export function newTrashDir(d = new Date()): string {
  const iso = d.toISOString();
  return `${TRASH_DIR}/${iso.slice(0, 10)}/${iso.slice(11, 23).replace(/[:.]/g, '')}`;
}

/** Whether `path` is `want` or below the folder `want` ('' matches everything). */
function matches(path: string, want: string | undefined, query: string | undefined): boolean {
  if (want && path !== want && !path.startsWith(`${want}/`)) return false;
  return !query || path.toLowerCase().includes(query.toLowerCase());
}

export interface VersionSource {
  pair: string;
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  /** This computer's name and the server's, shown as where a version came from. */
  deviceName: string;
  remoteLabel: string;
}

/** Versions of `path` (a file, or a folder: everything below it), newest first, from both sides' trash. */
export async function listVersions(
  s: VersionSource,
  opts: { path?: string; query?: string; limit?: number } = {},
): Promise<VersionInfo[]> {
  const out: VersionInfo[] = [];
  const add = (side: 'local' | 'remote', rel: string, st: { size: number; mtimeMs: number; kind: string }) => {
    const p = parseTrashPath(rel);
    if (!p || !matches(p.path, opts.path, opts.query)) return;
    out.push({
      id: `${side}:${rel}`,
      pair: s.pair,
      path: p.path,
      side,
      trashedAt: p.trashedAt,
      size: st.size,
      mtime: st.mtimeMs,
      kind: st.kind === 'symlink' ? 'symlink' : 'file',
      origin: side === 'local' ? s.deviceName : s.remoteLabel,
    });
  };
  // Here: a walk of the local trash (never following a link).
  const stack = [''];
  let seen = 0;
  while (stack.length && seen < SCAN_LIMIT) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = readdirSync(join(s.localRoot, TRASH_DIR, dir));
    } catch {
      continue;
    }
    for (const n of names) {
      seen++;
      const rel = dir ? `${dir}/${n}` : n;
      const st = lstatSync(join(s.localRoot, TRASH_DIR, rel));
      if (st.isDirectory()) stack.push(rel);
      else if (st.isFile() || st.isSymbolicLink())
        add('local', rel, { size: st.size, mtimeMs: st.mtimeMs, kind: st.isFile() ? 'file' : 'symlink' });
    }
  }
  // The server: its trash folder listed as a root of its own (rsync's listing needs nothing else there).
  const trashRoot = `${s.remote.path.replace(/\/+$/, '')}/${TRASH_DIR}`;
  try {
    let n = 0;
    for await (const e of listRemote(s.remote, s.ssh, trashRoot, '', { inotifywait: false, gnuFind: false })) {
      if (++n > SCAN_LIMIT) break;
      if (e.kind === 'dir') continue;
      add('remote', e.path, { size: e.size, mtimeMs: Number(e.mtimeNs / 1_000_000n), kind: e.kind });
    }
  } catch (e) {
    // No trash on the server yet is not an error; anything else is.
    if (!(e instanceof LipsyncError && e.kind === 'remote-missing')) throw e;
  }
  out.sort((a, b) => b.trashedAt - a.trashedAt || a.path.localeCompare(b.path) || a.side.localeCompare(b.side));
  return out.slice(0, opts.limit ?? 1000);
}

/** A relative path inside the root that is safe to write: no '..', not in .lipsync, no symlinked parent. */
function checkTarget(root: string, rel: string): void {
  const parts = rel.split('/');
  if (!rel || rel.startsWith('/') || parts.some((c) => c === '' || c === '.' || c === '..'))
    throw new LipsyncError('invalid-settings', `${rel} is not a path inside the pair's folder.`, {
      fix: 'Give a path relative to the folder, e.g. docs/report.txt.',
    });
  if (isMetaPath(rel))
    throw new LipsyncError('invalid-settings', `${rel} is inside .lipsync, which lipsync keeps for itself.`, {
      fix: 'Restore to a path outside .lipsync.',
    });
  for (let i = 1; i < parts.length; i++) {
    const anc = parts.slice(0, i).join('/');
    let st;
    try {
      st = lstatSync(join(root, anc));
    } catch {
      return; // absent: made as a folder below
    }
    if (!st.isDirectory())
      throw new LipsyncError('invalid-settings', `Cannot restore to ${rel}: ${anc} is not a folder here.`, {
        fix: 'Restore it next to its old place with --to, or move what is at that path away first.',
      });
  }
}

/**
 * Brings version `id` (from listVersions) back to `to` (default: its own path) in the local
 * folder: fetched (or copied) into .lipsync first, the current file there moved to the
 * local trash, then renamed into place. Returns the path restored and where the version it
 * replaced went (null when nothing was there).
 */
export async function restoreVersion(
  s: VersionSource,
  id: string,
  to?: string,
): Promise<{ path: string; replacedTo: string | null }> {
  const m = /^(local|remote):(.+)$/s.exec(id);
  const parsed = m ? parseTrashPath(m[2]!) : null;
  if (!m || !parsed)
    throw new LipsyncError('invalid-settings', `There is no version ${id}.`, {
      fix: 'See `lipsync versions PATH` for the versions of a file.',
    });
  const side = m[1] as 'local' | 'remote';
  const rel = m[2]!;
  const target = to ?? parsed.path;
  checkTarget(s.localRoot, target);
  const meta = join(s.localRoot, META_DIR);
  mkdirSync(meta, { recursive: true });
  const tmp = join(meta, `restore-${randomBytes(6).toString('hex')}`);
  try {
    if (side === 'local') {
      const src = join(s.localRoot, TRASH_DIR, rel);
      let st;
      try {
        st = lstatSync(src);
      } catch {
        throw new LipsyncError('invalid-settings', `There is no version ${id} (not in the trash any more).`, {
          fix: 'See `lipsync versions PATH`.',
        });
      }
      if (!st.isFile())
        throw new LipsyncError('invalid-settings', `Version ${id} is not a file.`, { fix: 'Pick a file version.' });
      copyFileSync(src, tmp);
      chmodSync(tmp, st.mode & 0o7777);
      utimesSync(tmp, st.atime, st.mtime);
    } else {
      await rsyncFetchFile(s.remote, s.ssh, `${TRASH_DIR}/${rel}`, tmp);
    }
    let replacedTo: string | null = null;
    const dest = join(s.localRoot, target);
    let present = true;
    try {
      lstatSync(dest);
    } catch {
      present = false;
    }
    if (present) {
      const trash = `${newTrashDir()}/${target}`;
      mkdirSync(join(s.localRoot, trash, '..'), { recursive: true });
      renameSync(dest, join(s.localRoot, trash));
      replacedTo = trash;
    }
    mkdirSync(join(dest, '..'), { recursive: true });
    renameSync(tmp, dest);
    return { path: target, replacedTo };
  } finally {
    rmSync(tmp, { force: true });
  }
}
