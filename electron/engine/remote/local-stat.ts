/**
 * The state of paths on a local remote (a mounted disk), as statRemote and
 * listRemote report them: node:fs lstat with bigint times, symlinks read, and
 * sockets, fifos and devices left out (null).
 */

import { lstat, readlink, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import type { EntryKind, RemoteStat } from '../types.js';
import { fsError, remoteMissing, remoteNotDir } from '../errors.js';

/** An lstat's kind as an EntryKind; null for sockets, fifos and devices. */
export function localKind(st: BigIntStats): EntryKind | null {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : null;
}

/** The state of one absolute path (null: absent, or a kind sync doesn't handle). */
export async function localStat(abs: string): Promise<RemoteStat | null> {
  let st: BigIntStats;
  try {
    st = await lstat(abs, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw fsError(e, abs, 'read');
  }
  return localStatOf(st, abs);
}

/** An lstat result as a RemoteStat (a symlink's target read). */
export async function localStatOf(st: BigIntStats, abs: string): Promise<RemoteStat | null> {
  const kind = localKind(st);
  if (kind === null) return null;
  let target: string | null = null;
  if (kind === 'symlink') {
    try {
      target = await readlink(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw fsError(e, abs, 'read');
    }
  }
  return {
    kind,
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode & 0o7777n),
    ino: st.ino,
    target,
  };
}

/** Throws 'remote-missing' / 'remote-not-dir' unless `abs` is a folder (symlinks followed when `follow`). */
export async function requireLocalDir(abs: string, follow = true): Promise<void> {
  let st;
  try {
    st = follow ? await stat(abs) : await lstat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw remoteMissing(abs, null);
    throw fsError(e, abs, 'read');
  }
  if (!st.isDirectory()) throw remoteNotDir(abs, null);
}
