/**
 * Path operations lipsync does itself inside the local root, never through a
 * symlink (rule N5 of docs/sync-semantics.md): a path whose parent, inside the
 * root, is a symlink (or not a folder) is not in the synced tree, so it is
 * neither looked at, renamed, created nor removed.
 *
 * Decisions use LocalAncestors: an lstat of each folder above a path (cached
 * for one batch), then an lstat of the path; a path below a symlink or a file
 * counts as absent.
 *
 * Changes (renames, mkdir, rmdir) walk the path one folder at a time from the
 * root, opening each folder with O_NOFOLLOW | O_DIRECTORY relative to the one
 * before (through /proc/self/fd/N/NAME, Linux's openat for a process without
 * openat), and do the change relative to the last folder's descriptor. A
 * folder swapped for a symlink before its open makes the open fail (ELOOP or
 * ENOTDIR): the change is refused. A swap after the open does not matter: the
 * descriptor is the folder itself, wherever it is now. So on Linux no change
 * lands outside the root, whatever races with it. Without /proc (another
 * system) each folder is lstat'ed just before the change and again after it;
 * a swap in between is undone where possible (renamed back), and the window
 * is the few microseconds between the check and the rename.
 */
import {
  closeSync,
  constants,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import type { LocalStat } from './types.js';
import { LipsyncError } from './errors.js';
import { lstatLocalSync } from './scan.js';

/** /proc/self/fd/N/NAME resolves NAME inside the folder open as N (openat, renameat, mkdirat). */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

/** A path's parent inside the root is a symlink or not a folder: lipsync refused to touch it. */
export class SymlinkedParentError extends LipsyncError {
  constructor(
    readonly path: string,
    readonly parent: string,
  ) {
    super(
      'vanished',
      `${path} was not changed: ${parent} above it is not a folder (a symlink, or a file) inside the sync folder.`,
      {
        fix: 'Nothing to do: lipsync never works through a symlink, and looks at the path again once its folder is synced.',
        files: [path],
      },
    );
  }
}

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** The proper ancestors of `rel` ('a/b/c' → 'a', 'a/b'), top down. */
export function ancestorsOf(rel: string): string[] {
  const out: string[] = [];
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) out.push(rel.slice(0, i));
  return out;
}

type Kind = 'dir' | 'absent' | 'other';

/**
 * lstat for decisions: a path whose ancestor inside the root is absent, a symlink or a
 * file is absent (links are never followed, N1). Ancestors are looked at once per
 * instance: make one per batch of decisions.
 */
export class LocalAncestors {
  private readonly kinds = new Map<string, Kind>();
  constructor(private readonly root: string) {}

  private kind(dir: string): Kind {
    let k = this.kinds.get(dir);
    if (k === undefined) {
      const st = lstatLocalSync(join(this.root, dir));
      k = !st ? 'absent' : st.kind === 'dir' ? 'dir' : 'other';
      this.kinds.set(dir, k);
    }
    return k;
  }

  /**
   * The first folder above `rel` that is present but not a folder (a symlink or a file),
   * or null when every folder above it is a folder or absent.
   */
  blockedBy(rel: string): string | null {
    for (const a of ancestorsOf(rel)) {
      const k = this.kind(a);
      if (k === 'other') return a;
      if (k === 'absent') return null;
    }
    return null;
  }

  /** Whether every folder above `rel` is a folder (so `rel` itself may exist in the tree). */
  reachable(rel: string): boolean {
    for (const a of ancestorsOf(rel)) if (this.kind(a) !== 'dir') return false;
    return true;
  }

  /** The path's state, or null when it, or a folder above it, is not in the synced tree. */
  lstat(rel: string): LocalStat | null {
    if (rel === '') return lstatLocalSync(this.root);
    return this.reachable(rel) ? lstatLocalSync(join(this.root, rel)) : null;
  }
}

/** One lstat of `rel` through checked ancestors (no cache). */
export function lstatInRoot(root: string, rel: string): LocalStat | null {
  return new LocalAncestors(root).lstat(rel);
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** An open folder inside the root, and the name below it the operation is about. */
interface Held {
  fd: number;
  name: string;
  /** The path to use for the operation: through the descriptor where possible. */
  at: string;
}

function fdPath(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/**
 * Opens the folder holding `rel` (relative to `root`), each folder on the way with
 * O_NOFOLLOW relative to the one before; creates missing ones when `create`. Throws
 * SymlinkedParentError when one is a symlink or not a folder, ENOENT when one is
 * missing (and not created).
 */
function holdParent(root: string, rel: string, create: boolean): Held {
  const parts = rel.split('/');
  const name = parts.pop()!;
  let fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (let i = 0; i < parts.length; i++) {
      const c = parts[i]!;
      let next: number;
      try {
        next = openSync(fdPath(fd, c), DIR_FLAGS);
      } catch (e) {
        if (code(e) === 'ENOENT' && create) {
          try {
            mkdirSync(fdPath(fd, c));
          } catch (e2) {
            if (code(e2) !== 'EEXIST') throw e2;
          }
          next = openSync(fdPath(fd, c), DIR_FLAGS);
        } else if (code(e) === 'ELOOP' || code(e) === 'ENOTDIR') {
          throw new SymlinkedParentError(rel, parts.slice(0, i + 1).join('/'));
        } else throw e;
      }
      closeSync(fd);
      fd = next;
    }
  } catch (e) {
    closeSync(fd);
    if (code(e) === 'ELOOP' || code(e) === 'ENOTDIR') throw new SymlinkedParentError(rel, parts.join('/'));
    throw e;
  }
  return { fd, name, at: fdPath(fd, name) };
}

/** Without /proc: checks (and with `create` makes) each folder above `rel` with lstat; returns the plain path. */
function checkParentPlain(root: string, rel: string, create: boolean): string {
  for (const a of ancestorsOf(rel)) {
    const st = lstatLocalSync(join(root, a));
    if (!st) {
      if (!create) throw Object.assign(new Error(`ENOENT: ${a}`), { code: 'ENOENT' });
      mkdirSync(join(root, a));
      continue;
    }
    if (st.kind !== 'dir') throw new SymlinkedParentError(rel, a);
  }
  return join(root, rel);
}

/** Runs `fn` with the path of `rel` reached through checked folders (see the file comment). */
function withParent<T>(root: string, rel: string, create: boolean, fn: (at: string) => T): T {
  if (!PROC_FD) return fn(checkParentPlain(root, rel, create));
  const h = holdParent(root, rel, create);
  try {
    return fn(h.at);
  } finally {
    closeSync(h.fd);
  }
}

/** Whether `rel` exists (any kind) in the tree; false when a folder above it is not a folder. */
export function existsInRoot(root: string, rel: string): boolean {
  return lstatInRoot(root, rel) !== null || isSpecial(root, rel);
}

function isSpecial(root: string, rel: string): boolean {
  if (!new LocalAncestors(root).reachable(rel)) return false;
  try {
    lstatSync(join(root, rel));
    return true;
  } catch {
    return false;
  }
}

/**
 * Renames `from` to `to` (both relative to `root`), creating the folders above `to`
 * when `createParents`; neither is reached through a symlink. Throws
 * SymlinkedParentError when a folder above either is not a folder, else what
 * rename(2) throws.
 */
export function renameInRoot(root: string, from: string, to: string, createParents = false): void {
  betweenInRoot(root, from, to, createParents, renameSync, true);
}

/**
 * Makes `to` a hard link of the file `from` (both relative to `root`), as renameInRoot
 * does a rename: a version kept in the trash while its path is replaced by one rename,
 * so the path is never absent meanwhile. Throws what link(2) throws (EXDEV, EPERM on a
 * file system without hard links).
 */
export function linkInRoot(root: string, from: string, to: string, createParents = false): void {
  betweenInRoot(root, from, to, createParents, linkSync, false);
}

/** `op(from, to)` through checked folders (renameInRoot, linkInRoot); `undo`: rename back when `to` left the root. */
function betweenInRoot(
  root: string,
  from: string,
  to: string,
  createParents: boolean,
  op: (a: string, b: string) => void,
  undo: boolean,
): void {
  if (!PROC_FD) {
    const src = checkParentPlain(root, from, false);
    const dst = checkParentPlain(root, to, createParents);
    op(src, dst);
    // Re-check: a folder above `to` swapped for a symlink meanwhile would have taken
    // the file outside the root; bring it back (where the swap left a way back).
    try {
      checkParentPlain(root, to, false);
    } catch (e) {
      try {
        if (undo) renameSync(dst, src);
        else unlinkSync(dst);
      } catch {
        // the way back is gone too: the error below says so
      }
      throw e;
    }
    return;
  }
  const src = holdParent(root, from, false);
  try {
    const dst = holdParent(root, to, createParents);
    try {
      op(src.at, dst.at);
    } finally {
      closeSync(dst.fd);
    }
  } finally {
    closeSync(src.fd);
  }
}

/** mkdir -p of `rel` inside the root, never through a symlink. */
export function mkdirsInRoot(root: string, rel: string): void {
  if (rel === '') return;
  withParent(root, rel, true, (at) => {
    try {
      mkdirSync(at);
    } catch (e) {
      if (code(e) !== 'EEXIST') throw e;
      const st = lstatLocalSync(at);
      if (st?.kind !== 'dir') throw new SymlinkedParentError(rel, rel);
    }
  });
}

/** rmdir of `rel` inside the root (it must be empty), never through a symlink. */
export function rmdirInRoot(root: string, rel: string): void {
  withParent(root, rel, false, (at) => rmdirSync(at));
}

/** Removes the file or symlink `rel` inside `root`, never through a symlinked folder (N5). */
export function unlinkInRoot(root: string, rel: string): void {
  withParent(root, rel, false, (at) => unlinkSync(at));
}

/**
 * The first folder above `rel` that `above` (the states of the folders above a batch of
 * paths, e.g. from statRemote) shows present and not a folder; null when none is.
 */
export function waitsForParent(rel: string, above: ReadonlyMap<string, { kind: string } | null>): string | null {
  for (const a of ancestorsOf(rel)) {
    const st = above.get(a);
    if (st === undefined || st === null) return null;
    if (st.kind !== 'dir') return a;
  }
  return null;
}
