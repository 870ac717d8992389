/**
 * safe-fs.ts (rule N5 of docs/sync-semantics.md): lstat, rename, mkdir and rmdir
 * inside a root never go through a symlinked (or non-folder) parent; statRemote
 * (local-path backend) calls a path below a symlinked folder absent. Real files,
 * real symlinks into a folder outside the root, and a digest of that folder.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalAncestors,
  SymlinkedParentError,
  existsInRoot,
  lstatInRoot,
  mkdirsInRoot,
  renameInRoot,
  rmdirInRoot,
  waitsForParent,
} from '../../electron/engine/safe-fs.js';
import { statRemote } from '../../electron/engine/remote/stat.js';
import type { SshOptions } from '../../electron/engine/types.js';
import { rsyncSymlinkWarning, SAFE_PARENT_RSYNC_VERSION } from '../../electron/engine/remote/rsync.js';
import { makeSentinel, sentinelIntact, type Sentinel } from '../support/sentinel.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A root holding a real folder `real/` with a file, and `link -> <sentinel>`. */
function setup(): { root: string; s: Sentinel } {
  const root = mkdtempSync(join(tmpdir(), 'lipsync-safefs-'));
  const s = makeSentinel();
  dirs.push(root, s.dir);
  mkdirSync(join(root, 'real'));
  writeFileSync(join(root, 'real', 'a.txt'), 'a');
  symlinkSync(s.dir, join(root, 'link'));
  writeFileSync(join(root, 'file'), 'f');
  return { root, s };
}

describe('safe-fs: nothing through a symlink inside the root', () => {
  it('lstat calls a path below a symlink or a file absent, and names the folder in the way', () => {
    const { root, s } = setup();
    expect(existsSync(join(root, 'link', 'notes.txt'))).toBe(true); // plain fs follows it
    expect(lstatInRoot(root, 'link/notes.txt')).toBeNull();
    expect(lstatInRoot(root, 'link/sub/deep.txt')).toBeNull();
    expect(lstatInRoot(root, 'link')?.kind).toBe('symlink');
    expect(lstatInRoot(root, 'real/a.txt')?.kind).toBe('file');
    expect(existsInRoot(root, 'link/notes.txt')).toBe(false);
    const view = new LocalAncestors(root);
    expect(view.blockedBy('link/sub/deep.txt')).toBe('link');
    expect(view.blockedBy('file/x')).toBe('file');
    expect(view.blockedBy('real/a.txt')).toBeNull();
    expect(view.blockedBy('missing/x/y')).toBeNull();
    expect(sentinelIntact(s)).toBe(true);
  });

  it('refuses to rename from, to or create folders through a symlinked parent; outside stays as it was', () => {
    const { root, s } = setup();
    expect(() => renameInRoot(root, 'link/notes.txt', 'real/stolen.txt')).toThrow(SymlinkedParentError);
    expect(() => renameInRoot(root, 'real/a.txt', 'link/a.txt')).toThrow(SymlinkedParentError);
    expect(() => renameInRoot(root, 'real/a.txt', 'link/new/a.txt', true)).toThrow(SymlinkedParentError);
    expect(() => mkdirsInRoot(root, 'link/made/here')).toThrow(SymlinkedParentError);
    expect(() => rmdirInRoot(root, 'link/sub')).toThrow(SymlinkedParentError);
    expect(() => renameInRoot(root, 'file/x', 'real/x')).toThrow(SymlinkedParentError);
    expect(readFileSync(join(root, 'real', 'a.txt'), 'utf8')).toBe('a');
    expect(existsSync(join(root, 'real', 'stolen.txt'))).toBe(false);
    expect(sentinelIntact(s)).toBe(true);
  });

  it('renames, makes and removes folders inside the root; a symlink as the last part is moved, not followed', () => {
    const { root, s } = setup();
    renameInRoot(root, 'real/a.txt', 'new/deeper/a.txt', true);
    expect(readFileSync(join(root, 'new', 'deeper', 'a.txt'), 'utf8')).toBe('a');
    mkdirsInRoot(root, 'made/one/two');
    expect(existsSync(join(root, 'made', 'one', 'two'))).toBe(true);
    rmdirInRoot(root, 'made/one/two');
    expect(existsSync(join(root, 'made', 'one', 'two'))).toBe(false);
    renameInRoot(root, 'link', 'moved-link');
    expect(lstatInRoot(root, 'moved-link')?.kind).toBe('symlink');
    expect(() => mkdirsInRoot(root, 'moved-link')).toThrow(SymlinkedParentError);
    expect(sentinelIntact(s)).toBe(true);
  });

  it('a folder swapped for a symlink after a check is still refused at the rename', () => {
    const { root, s } = setup();
    const view = new LocalAncestors(root);
    expect(view.lstat('real/a.txt')?.kind).toBe('file'); // checked: real is a folder
    // Another process swaps it: the folder goes, a link to the outside takes its name.
    renameSync(join(root, 'real'), join(root, 'real-gone'));
    symlinkSync(s.dir, join(root, 'real'));
    expect(() => renameInRoot(root, 'real/notes.txt', 'taken.txt')).toThrow(SymlinkedParentError);
    expect(existsSync(join(root, 'taken.txt'))).toBe(false);
    expect(sentinelIntact(s)).toBe(true);
  });

  it('waitsForParent names the first folder above that is not one', () => {
    const above = new Map<string, { kind: string } | null>([
      ['a', { kind: 'dir' }],
      ['a/b', { kind: 'symlink' }],
      ['c', null],
    ]);
    expect(waitsForParent('a/b/c.txt', above)).toBe('a/b');
    expect(waitsForParent('a/x.txt', above)).toBeNull();
    expect(waitsForParent('c/d/e', above)).toBeNull();
    expect(waitsForParent('top.txt', above)).toBeNull();
  });

  it('statRemote (a local-path remote) calls a path below a symlinked folder absent and reports the folders above', async () => {
    const { root, s } = setup();
    const above = new Map();
    const st = await statRemote(
      { kind: 'local', path: root },
      {} as SshOptions,
      root,
      ['link/notes.txt', 'real/a.txt', 'link', 'file/x'],
      { inotifywait: false, gnuFind: false },
      above,
    );
    expect(st.map((x) => x?.kind ?? null)).toEqual([null, 'file', 'symlink', null]);
    expect(above.get('link')?.kind).toBe('symlink');
    expect(above.get('real')?.kind).toBe('dir');
    expect(sentinelIntact(s)).toBe(true);
  });

  it('warns about an rsync older than the one that refuses symlinked parents, on either side', () => {
    expect(rsyncSymlinkWarning(SAFE_PARENT_RSYNC_VERSION, '3.6.1', 'srv')).toBeNull();
    expect(rsyncSymlinkWarning(null, null, 'srv')).toBeNull();
    const w = rsyncSymlinkWarning('3.5.0', '3.2.7', 'srv');
    expect(w).toMatch(/rsync 3\.2\.7 on srv/);
    expect(w).toMatch(/upgrade rsync to 3\.5\.0/);
    expect(rsyncSymlinkWarning('3.4.1', '3.5.0', 'srv')).toMatch(/rsync 3\.4\.1 here/);
  });
});
