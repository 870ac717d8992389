/**
 * New server folders pulled whole (rules T3 and T4 of docs/sync-semantics.md, "New
 * folders"; cycle/new-remote-folders.ts): a Cycle in the test process against a
 * local-path remote, as in cycle.test.ts. The cycle's remote steps call checkPaused, which
 * these tests use to change a side at a chosen moment of the pull.
 */
import { describe, expect, it } from 'vitest';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Cycle, emptyTotals, type CycleTotals } from '../../electron/engine/cycle.js';
import { DirtySet } from '../../electron/engine/dirty.js';
import { createExcluder } from '../../electron/engine/excludes.js';
import { parseRemote } from '../../electron/engine/remote/spec.js';
import type { Direction } from '../../shared/settings.js';
import { put, read, tree } from '../support/trees.js';
import { useInprocessEnv } from './env.js';

const env = useInprocessEnv('lipsync-inprocess-pullwhole-');

/** What a cycle asked to look at again. */
interface Requeued {
  local: string[];
  remote: string[];
}

/** One cycle over both whole sides, as `lipsync sync` runs it. */
async function sync(
  opts: {
    direction?: Direction;
    checkPaused?: () => void;
    requeued?: Requeued;
    remoteHeld?: string[];
  } = {},
): Promise<CycleTotals> {
  const totals = emptyTotals();
  const held = new Set(opts.remoteHeld ?? []);
  const cycle = new Cycle({
    pair: 'p1',
    db: env.db,
    localRoot: env.local,
    remote: parseRemote(env.server),
    remoteLabel: env.server,
    ssh: { controlDir: join(env.dir, 'ssh') },
    ops: env.ops,
    caps: { inotifywait: false, gnuFind: false },
    excluder: createExcluder([]),
    direction: opts.direction ?? 'two-way',
    deviceName: 'testbox',
    bwLimitKBps: 0,
    log: env.log,
    totals,
    massDeleteConfirmed: false,
    checkPaused: opts.checkPaused ?? (() => undefined),
    onProgress: () => undefined,
    requeueLocalTree: (p) => opts.requeued?.local.push(p),
    requeueRemote: (p) => opts.requeued?.remote.push(p),
    held: (side, p) => side === 'remote' && held.has(p),
    remoteHeldBelow: (dir) => [...held].filter((p) => p.startsWith(`${dir}/`)),
    withRemoteLock: (fn) => fn(),
    stagingPrefix: 'test',
  });
  const all = () => {
    const s = new DirtySet();
    s.addFull();
    return s.take();
  };
  await cycle.collect(all(), all());
  await cycle.checkMassDelete();
  await cycle.execute();
  return totals;
}

const logText = () => readFileSync(join(env.dir, 'log'), 'utf8');
/** The folders the log says were pulled whole (one line per rsync run). */
const pulledWhole = () =>
  [...logText().matchAll(/received \d+ files? in (\d+) new folders?/g)].reduce((n, m) => n + Number(m[1]), 0);
const staged = () => readdirSync(join(env.local, '.lipsync', 'incoming'));
/** Whether a staging folder here holds `rel` (the pull of its run is done, not yet moved). */
const stagedHas = (rel: string) =>
  existsSync(join(env.local, '.lipsync', 'incoming')) &&
  staged().some((s) => existsSync(join(env.local, '.lipsync', 'incoming', s, rel)));
const conflictCopies = (root: string) =>
  readdirSync(root, { recursive: true }).filter((e) => String(e).includes('conflicted copy'));

describe('new server folders are pulled whole (T3, T4)', () => {
  it('an empty folder joining gets everything, recorded whole; the next cycle moves nothing', async () => {
    const outside = join(env.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'SECRET');
    for (let i = 0; i < 40; i++) await put(env.server, `t${i % 4}/d${i % 3}/f${i}.txt`, `file ${i}`);
    await put(env.server, 'root.txt', 'at the root');
    await put(env.server, 'x/tool.sh', '#!/bin/sh\n');
    rmSync(join(env.server, 'x/tool.sh'));
    writeFileSync(join(env.server, 'x/tool.sh'), '#!/bin/sh\n', { mode: 0o755 });
    mkdirSync(join(env.server, 'x/empty'));
    symlinkSync(outside, join(env.server, 'x/out')); // N1, N5: a link, never followed
    const totals = await sync();
    expect(tree(env.local)).toEqual(tree(env.server));
    expect(lstatSync(join(env.local, 'x/out')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(env.local, 'x/out'))).toBe(outside);
    expect(lstatSync(join(env.local, 'x/tool.sh')).mode & 0o111).not.toBe(0);
    expect(totals.filesReceived).toBe(42);
    expect(totals.conflicts).toBe(0);
    // Every path is in the base; the folders came whole (one log line says so).
    expect(env.db.count()).toBe(tree(env.server).length);
    expect(pulledWhole()).toBe(5);
    expect(staged()).toEqual([]);
    const again = await sync();
    expect([again.filesReceived, again.filesSent, again.conflicts]).toEqual([0, 0, 0]);
  });

  it('a folder held here in part: what differs becomes a conflict copy, nothing is overwritten', async () => {
    await put(env.server, 'a/same.txt', 'same', new Date('2026-01-01T00:00:00Z'));
    await put(env.server, 'a/diff.txt', 'server version');
    await put(env.server, 'a/sub/s.txt', 'server sub');
    await put(env.server, 'b/new.txt', 'only on the server');
    await put(env.local, 'a/same.txt', 'same', new Date('2026-01-01T00:00:00Z'));
    await put(env.local, 'a/diff.txt', 'local version, different');
    await put(env.local, 'a/mine.txt', 'only here');
    const totals = await sync();
    expect(read(env.local, 'a/diff.txt')).toBe('server version');
    const copies = conflictCopies(env.local);
    expect(copies).toHaveLength(1);
    expect(read(env.local, String(copies[0]))).toBe('local version, different');
    expect(read(env.local, 'b/new.txt')).toBe('only on the server');
    expect(read(env.local, 'a/sub/s.txt')).toBe('server sub');
    expect(read(env.server, 'a/mine.txt')).toBe('only here');
    expect(totals.conflicts).toBe(1);
    // b and a/sub were absent here: pulled whole.
    expect(pulledWhole()).toBe(2);
  });

  it('a file made here in a folder not yet moved into place: that folder goes path by path, nothing lost', async () => {
    await put(env.server, 'b/one.txt', 'one');
    await put(env.server, 'b/two.txt', 'two');
    const requeued: Requeued = { local: [], remote: [] };
    let made = false;
    await sync({
      requeued,
      checkPaused: () => {
        if (made || !stagedHas('b/one.txt')) return;
        // The pull is done, the folder is not in place yet: someone makes it here.
        mkdirSync(join(env.local, 'b'), { recursive: true });
        writeFileSync(join(env.local, 'b/mine.txt'), 'made during the pull');
        made = true;
      },
    });
    expect(made).toBe(true);
    expect(requeued.local).toContain('b');
    expect(read(env.local, 'b/mine.txt')).toBe('made during the pull');
    expect(read(env.local, 'b/one.txt')).toBe('one');
    expect(read(env.local, 'b/two.txt')).toBe('two');
    await sync(); // the walk the requeue asks for
    expect(read(env.server, 'b/mine.txt')).toBe('made during the pull');
    expect(conflictCopies(env.local)).toEqual([]);
    expect(staged()).toEqual([]);
  });

  it('a file changed on the server during the pull is fetched again, never a conflict', async () => {
    await put(env.server, 'b/f.txt', 'v1', new Date('2026-01-01T00:00:00Z'));
    await put(env.server, 'b/g.txt', 'g v1', new Date('2026-01-01T00:00:00Z'));
    const requeued: Requeued = { local: [], remote: [] };
    let before = false;
    let after = false;
    await sync({
      requeued,
      checkPaused: () => {
        if (!before && !stagedHas('b')) {
          // Listed, not yet pulled: changed on the server.
          writeFileSync(join(env.server, 'b/f.txt'), 'v2, longer than v1');
          before = true;
        } else if (!after && stagedHas('b/g.txt')) {
          // Pulled, not yet in place: changed again.
          writeFileSync(join(env.server, 'b/g.txt'), 'g v2, longer');
          after = true;
        }
      },
    });
    expect(before && after).toBe(true);
    expect(requeued.remote).toContain('b/f.txt');
    expect(read(env.local, 'b/f.txt')).toBe('v2, longer than v1');
    expect(read(env.local, 'b/g.txt')).toBe('g v1');
    const t = await sync();
    expect(read(env.local, 'b/g.txt')).toBe('g v2, longer');
    expect(t.conflicts).toBe(0);
    expect(conflictCopies(env.local)).toEqual([]);
    expect(read(env.server, 'b/f.txt')).toBe('v2, longer than v1');
  });

  it('a cycle cut short after the pull: the staging folder is removed at the next one, which converges', async () => {
    for (let i = 0; i < 20; i++) await put(env.server, `b${i % 2}/f${i}.txt`, `f${i}`);
    await expect(
      sync({
        checkPaused: () => {
          if (stagedHas('b0') || stagedHas('b1')) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(tree(env.local)).toEqual([]); // nothing in place, nothing recorded
    expect(env.db.count()).toBe(0);
    // What a kill -9 leaves (no finally ran): a staging folder with a pulled copy in it.
    await put(env.local, '.lipsync/incoming/pull-0123456789ab/b0/f0.txt', 'f0');
    await put(env.local, '.lipsync/incoming/pull-0123456789ab/b0/stale.txt', 'never taken for user data');
    await sync();
    expect(staged()).toEqual([]);
    expect(tree(env.local)).toEqual(tree(env.server));
    expect(conflictCopies(env.local)).toEqual([]);
  });

  it('a server folder swapped for a symlink during the pull: the folder is not moved in, nothing read through it (N5)', async () => {
    const outside = join(env.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'SECRET');
    await put(env.server, 'b/sub/f.txt', 'f');
    await put(env.server, 'b/g.txt', 'g');
    let swapped = false;
    const requeued: Requeued = { local: [], remote: [] };
    await sync({
      requeued,
      checkPaused: () => {
        if (swapped || !stagedHas('b/sub/f.txt')) return;
        renameSync(join(env.server, 'b/sub'), join(env.server, 'b/sub-was'));
        symlinkSync(outside, join(env.server, 'b/sub'));
        swapped = true;
      },
    });
    expect(swapped).toBe(true);
    expect(requeued.local).toContain('b'); // went path by path
    expect(lstatSync(join(env.local, 'b/sub')).isSymbolicLink()).toBe(true);
    const files = fileContents(env.local);
    expect(files.filter((c) => c.includes('SECRET'))).toEqual([]);
    expect(staged()).toEqual([]);
    await sync(); // the server's watcher would report the renamed folder: the next cycle gets it
    expect(read(env.local, 'b/sub-was/f.txt')).toBe('f');
  });

  it('a folder above a pulled one swapped for a symlink and back within the run: nothing unlisted is put in place (T4, N5)', async () => {
    // rsync opens a listed folder by its path: a folder above it that is a link meanwhile is
    // followed, and the checks after the run see a folder again once it is swapped back.
    const outside = join(env.dir, 'outside2');
    mkdirSync(join(outside, 'b'), { recursive: true });
    writeFileSync(join(outside, 'b/secret.txt'), 'SECRET');
    mkdirSync(join(env.local, 'a'));
    await put(env.server, 'a/b/sub/f.txt', 'f');
    await put(env.server, 'a/b/g.txt', 'g');
    let there = false;
    let back = false;
    await sync({
      checkPaused: () => {
        if (!there && !stagedHas('a/b')) {
          // Listed, not yet pulled: the folder above is swapped for a link to outside the root.
          renameSync(join(env.server, 'a'), join(env.server, 'a-real'));
          symlinkSync(outside, join(env.server, 'a'));
          writeFileSync(join(env.server, 'a-real/b/new.txt'), 'made after the listing');
          there = true;
        } else if (there && !back && stagedHas('a/b/secret.txt')) {
          // Read through the link; swapped back before the checks after the run.
          unlinkSync(join(env.server, 'a'));
          renameSync(join(env.server, 'a-real'), join(env.server, 'a'));
          back = true;
        }
      },
    });
    expect(there && back).toBe(true);
    const contents = () => fileContents(env.local);
    expect(contents().filter((c) => c.includes('SECRET'))).toEqual([]);
    expect(staged()).toEqual([]);
    // What was listed and not read (g.txt, sub/f.txt) goes path by path; new.txt is a change.
    await sync();
    expect(read(env.local, 'a/b/g.txt')).toBe('g');
    expect(read(env.local, 'a/b/sub/f.txt')).toBe('f');
    expect(read(env.local, 'a/b/new.txt')).toBe('made after the listing');
    expect(contents().filter((c) => c.includes('SECRET'))).toEqual([]);
    expect(conflictCopies(env.local)).toEqual([]);
  });

  it('a file still being written on the server is left out, and not recorded', async () => {
    await put(env.server, 'b/done.txt', 'done');
    await put(env.server, 'b/writing.txt', 'half');
    await sync({ remoteHeld: ['b/writing.txt'] });
    expect(read(env.local, 'b/done.txt')).toBe('done');
    expect(existsSync(join(env.local, 'b/writing.txt'))).toBe(false);
    expect(env.db.get('b/writing.txt')).toBeUndefined();
    await sync(); // closed now
    expect(read(env.local, 'b/writing.txt')).toBe('half');
  });

  it('receive-only pulls whole too; send-only never writes here', async () => {
    await put(env.server, 'b/f.txt', 'f');
    await sync({ direction: 'send-only' });
    expect(tree(env.local)).toEqual([]);
    await sync({ direction: 'receive-only' });
    expect(read(env.local, 'b/f.txt')).toBe('f');
    expect(pulledWhole()).toBe(1);
  });
});

/**
 * The regular files at or below `dir`, read. Symlinks are not followed: a symlink synced as
 * a symlink may point outside the root, and Node 22's recursive readdir follows it.
 */
function fileContents(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...fileContents(p));
    else if (e.isFile()) out.push(readFileSync(p, 'utf8'));
  }
  return out;
}
