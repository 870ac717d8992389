/**
 * One sync cycle in the test process: a Cycle built directly against a local-path
 * remote (a second folder), with a real state database in a temp dir. No build, no
 * sshd: rsync runs between two local folders.
 */
import { describe, expect, it } from 'vitest';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Cycle, MassDeleteError, emptyTotals, type CycleTotals } from '../../electron/engine/cycle.js';
import { DirtySet } from '../../electron/engine/dirty.js';
import { createExcluder } from '../../electron/engine/excludes.js';
import { parseRemote } from '../../electron/engine/remote/spec.js';
import { put, read, tree } from '../support/trees.js';
import { useInprocessEnv } from './env.js';

const env = useInprocessEnv('lipsync-inprocess-cycle-');

/** One cycle over both whole sides, as `lipsync sync` runs it. */
async function sync(
  opts: {
    /** What the server's watcher reported (default: a full rescan). */
    serverChanges?: (s: DirtySet) => void;
    massDeleteConfirmed?: boolean;
    checkPaused?: () => void;
    /** Called between collecting and the mass-delete check. */
    collected?: () => void;
    gnuFind?: boolean;
  } = {},
): Promise<CycleTotals> {
  const remote = parseRemote(env.server);
  const totals = emptyTotals();
  const cycle = new Cycle({
    pair: 'p1',
    db: env.db,
    localRoot: env.local,
    remote,
    remoteLabel: env.server,
    ssh: { controlDir: join(env.dir, 'ssh') },
    ops: env.ops,
    caps: { inotifywait: false, gnuFind: opts.gnuFind ?? false },
    excluder: createExcluder([]),
    direction: 'two-way',
    deviceName: 'testbox',
    bwLimitKBps: 0,
    log: env.log,
    totals,
    massDeleteConfirmed: opts.massDeleteConfirmed ?? false,
    checkPaused: opts.checkPaused ?? (() => undefined),
    onProgress: () => undefined,
    requeueLocalTree: () => undefined,
    withRemoteLock: (fn) => fn(),
    stagingPrefix: 'test',
  });
  const localChanges = new DirtySet();
  localChanges.addFull();
  const serverChanges = new DirtySet();
  if (opts.serverChanges) opts.serverChanges(serverChanges);
  else serverChanges.addFull();
  await cycle.collect(localChanges.take(), serverChanges.take());
  opts.collected?.();
  await cycle.checkMassDelete();
  await cycle.execute();
  return totals;
}

/** What tree() lists for these files and folders (a folder as `name/`), sorted. */
const withDirs = (dirs: string[], files: string[]): string[] => [...dirs.map((d) => `${d}/`), ...files].sort();

describe('a cycle against a local-path remote (in-process)', () => {
  it('a new file goes each way', async () => {
    await put(env.local, 'here.txt', 'made here');
    await put(env.server, 'dir/there.txt', 'made on the server');
    const totals = await sync();
    expect(read(env.server, 'here.txt')).toBe('made here');
    expect(read(env.local, 'dir/there.txt')).toBe('made on the server');
    expect(totals.filesSent).toBe(1);
    expect(totals.filesReceived).toBe(1);
    expect(tree(env.local)).toEqual(tree(env.server));
  });

  it('an edit goes each way', async () => {
    await put(env.local, 'a.txt', 'a v1');
    await put(env.local, 'b.txt', 'b v1');
    await sync();
    await put(env.local, 'a.txt', 'a v2, edited here');
    await put(env.server, 'b.txt', 'b v2, edited on the server');
    const totals = await sync();
    expect(read(env.server, 'a.txt')).toBe('a v2, edited here');
    expect(read(env.local, 'b.txt')).toBe('b v2, edited on the server');
    expect(totals.conflicts).toBe(0);
  });

  it('a deletion goes each way, and the deleted version is kept in the trash', async () => {
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt']) await put(env.local, f, `${f} v1`);
    await sync();
    unlinkSync(join(env.local, 'a.txt'));
    unlinkSync(join(env.server, 'b.txt'));
    const totals = await sync();
    expect(existsSync(join(env.server, 'a.txt'))).toBe(false);
    expect(existsSync(join(env.local, 'b.txt'))).toBe(false);
    expect(totals.deleted).toBe(2);
    expect(tree(env.local)).toEqual(tree(env.server));
    expect(existsSync(join(env.server, '.lipsync', 'trash'))).toBe(true);
  });

  it('a folder removed on the server, seen by comparing its parent alone, is removed here with its files', async () => {
    // What a server listing since a moment says of a folder deleted whole: its parent changed (a poll,
    // a restart after a clean stop, a new shared watcher's listing across a handover, J3).
    for (let i = 0; i < 10; i++) await put(env.local, `keep${i}.txt`, 'k');
    await put(env.local, 'gone/a.txt', 'a');
    await put(env.local, 'gone/sub/b.txt', 'b');
    await sync();
    rmSync(join(env.server, 'gone'), { recursive: true });
    const totals = await sync({ serverChanges: (s) => s.markDir('') });
    expect(existsSync(join(env.local, 'gone'))).toBe(false);
    expect(totals.deleted).toBeGreaterThanOrEqual(1);
    expect(tree(env.local)).toEqual(tree(env.server));
  });

  it('an edit on both sides makes a conflict copy and records the conflict', async () => {
    await put(env.local, 'report.txt', 'v1');
    await sync();
    await put(env.local, 'report.txt', 'edited here, longer');
    await put(env.server, 'report.txt', 'edited on the server');
    const totals = await sync();
    expect(totals.conflicts).toBe(1);
    const copies = readdirSync(env.local).filter((n) => n.startsWith('report (conflicted copy testbox '));
    expect(copies).toHaveLength(1);
    expect(read(env.local, copies[0]!)).toBe('edited here, longer');
    expect(read(env.local, 'report.txt')).toBe('edited on the server');
    expect(env.db.openConflicts()).toHaveLength(1);
  });

  it('a mass deletion is refused with MassDeleteError, nothing deleted, until confirmed', async () => {
    const names = ['1', '2', '3', '4', '5', '6'].map((n) => `f${n}.txt`);
    for (const f of names) await put(env.local, f, `${f} content`);
    await sync();
    for (const f of names.slice(0, 5)) unlinkSync(join(env.local, f));
    await expect(sync()).rejects.toBeInstanceOf(MassDeleteError);
    for (const f of names) expect(existsSync(join(env.server, f))).toBe(true);
    const totals = await sync({ massDeleteConfirmed: true });
    expect(totals.deleted).toBe(5);
    expect(tree(env.server)).toEqual(['f6.txt']);
  });

  it('a folder moved here is moved on the server while acting, and not counted as deletions', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `docs/f${i}.txt`);
    for (const f of names) await put(env.local, f, `${f} content`);
    await sync();
    const inode = statSync(join(env.server, 'docs/f0.txt')).ino;
    renameSync(join(env.local, 'docs'), join(env.local, 'papers'));
    const totals = await sync({
      // Collecting only looks: the server still has the folder where it was.
      collected: () => expect(tree(env.server)).toEqual(withDirs(['docs'], names)),
    });
    expect(totals.renamed).toBe(1);
    expect(totals.filesSent).toBe(0);
    expect(totals.deleted).toBe(0);
    expect(tree(env.server)).toEqual(
      withDirs(
        ['papers'],
        names.map((f) => f.replace('docs/', 'papers/')),
      ),
    );
    expect(statSync(join(env.server, 'papers/f0.txt')).ino).toBe(inode); // renamed, not sent again
    expect(env.db.get('docs')).toBeUndefined();
    expect(env.db.get('papers/f9.txt')).toBeDefined();
  });

  it('a folder moved here with most of its files deleted: moved, then the deletions wait for a confirm', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `docs/f${i}.txt`);
    for (const f of names) await put(env.local, f, `${f} content`);
    await sync();
    renameSync(join(env.local, 'docs'), join(env.local, 'papers'));
    for (const f of names.slice(0, 8)) unlinkSync(join(env.local, f.replace('docs/', 'papers/')));
    await expect(sync()).rejects.toBeInstanceOf(MassDeleteError);
    // The move loses nothing and was made; nothing was deleted.
    expect(tree(env.server)).toEqual(
      withDirs(
        ['papers'],
        names.map((f) => f.replace('docs/', 'papers/')),
      ),
    );
    const totals = await sync({ massDeleteConfirmed: true });
    expect(totals.deleted).toBe(8);
    expect(tree(env.server)).toEqual(['papers/', 'papers/f8.txt', 'papers/f9.txt']);
  });

  it('a folder moved on the server is moved here while acting, not fetched again', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `docs/f${i}.txt`);
    for (const f of names) await put(env.server, f, `${f} content`);
    await sync({ gnuFind: true });
    const inode = statSync(join(env.local, 'docs/f0.txt')).ino;
    renameSync(join(env.server, 'docs'), join(env.server, 'papers'));
    const totals = await sync({
      gnuFind: true,
      // As the server's watcher reports a folder moved in: a tree, and the old name.
      serverChanges: (s) => (s.addTree('papers'), s.addPath('docs')),
      collected: () => expect(tree(env.local)).toEqual(withDirs(['docs'], names)),
    });
    expect(totals.renamed).toBe(1);
    expect(totals.filesReceived).toBe(0);
    expect(totals.deleted).toBe(0);
    expect(tree(env.local)).toEqual(
      withDirs(
        ['papers'],
        names.map((f) => f.replace('docs/', 'papers/')),
      ),
    );
    expect(statSync(join(env.local, 'papers/f0.txt')).ino).toBe(inode);
  });

  it('a move that no longer holds when acting is synced as a deletion and a creation, asked first', async () => {
    const names = Array.from({ length: 4 }, (_, i) => `docs/f${i}.txt`);
    for (const f of names) await put(env.local, f, `${f} content`);
    await sync();
    renameSync(join(env.local, 'docs'), join(env.local, 'papers'));
    // Another client makes the target on the server after we looked: the move is not made.
    const other = () => writeFileSync(join(env.server, 'papers/other.txt'), 'made by another client');
    await expect(sync({ collected: () => (mkdirSync(join(env.server, 'papers')), other()) })).rejects.toBeInstanceOf(
      MassDeleteError,
    );
    // The fallback would delete every file of the old folder: asked first, nothing deleted.
    expect(tree(env.server)).toEqual(withDirs(['docs', 'papers'], [...names, 'papers/other.txt']));
    const totals = await sync({ massDeleteConfirmed: true });
    expect(totals.conflicts).toBe(0);
    expect(tree(env.server)).toEqual(
      withDirs(['papers'], [...names.map((f) => f.replace('docs/', 'papers/')), 'papers/other.txt']),
    );
    expect(tree(env.local)).toEqual(tree(env.server));
  });

  it('a server folder swapped for a symlink between the decision and the pull: nothing read through it is kept (N5)', async () => {
    const secret = join(env.dir, 'secret');
    mkdirSync(secret);
    writeFileSync(join(secret, 'f.txt'), 'SECRET outside every root');
    await put(env.server, 'd/f.txt', 'v1');
    await sync();
    await put(env.server, 'd/f.txt', 'v2, edited on the server');
    // Another client swaps the folder for a link once the pull is decided: the cycle's
    // second remote step (the first is before deciding) is the pull.
    let calls = 0;
    let swapped = false;
    await sync({
      checkPaused: () => {
        if (++calls !== 2) return;
        renameSync(join(env.server, 'd'), join(env.server, 'd-was'));
        symlinkSync(secret, join(env.server, 'd'));
        swapped = true;
      },
    });
    expect(swapped).toBe(true);
    const everything = (root: string): string[] =>
      readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'));
    expect(everything(env.local).filter((c) => c.includes('SECRET'))).toEqual([]);
    expect(readFileSync(join(secret, 'f.txt'), 'utf8')).toBe('SECRET outside every root');
    // The version it would have replaced is kept: v1 is here or in the trash.
    expect(everything(env.local)).toContain('v1');
  });
});
