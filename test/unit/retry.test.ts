import { describe, expect, it } from 'vitest';
import type { ErrorInfo } from '../../shared/errors.js';
import {
  PATH_RETRY_FIRST_MS,
  PATH_RETRY_MAX_MS,
  PathRetries,
  dedupeWarnings,
  holdingExcluder,
  snapshotCovers,
  snapshotTouchesAbove,
} from '../../electron/engine/retry.js';
import type { DirtySnapshot } from '../../electron/engine/dirty.js';
import { unfitFiles, unfitWarning } from '../../electron/engine/unfit.js';

const denied: ErrorInfo = {
  kind: 'permission-denied',
  message: 'No permission to write one file on srv.',
  fix: 'chmod u+w FOLDER',
  files: ['ro/new.txt'],
};

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const snap = (over: Partial<DirtySnapshot>): DirtySnapshot => ({
  full: false,
  trees: [],
  dirs: [],
  since: null,
  ...over,
});

describe('PathRetries', () => {
  it('retries a failed path after 5 s, doubling up to 10 min', () => {
    const c = clock();
    const r = new PathRetries({ now: c.now });
    expect(r.fail('a', denied)).toEqual({ news: true, retryInMs: PATH_RETRY_FIRST_MS });
    expect(r.nextDueInMs()).toBe(5000);
    expect(r.takeDue()).toEqual([]);
    c.t += 5000;
    expect(r.takeDue()).toEqual(['a']);
    // Handed out once: not again until it fails again.
    expect(r.takeDue()).toEqual([]);
    expect(r.nextDueInMs()).toBeNull();
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) delays.push(r.fail('a', denied).retryInMs);
    expect(delays.slice(0, 4)).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(Math.max(...delays)).toBe(PATH_RETRY_MAX_MS);
  });

  it('reports a failure as news once; the same warning again is not news, another one is', () => {
    const r = new PathRetries({ now: clock().now });
    expect(r.failAll([denied])).toHaveLength(1);
    expect(r.failAll([denied])).toEqual([]);
    const other = { ...denied, message: 'The server refused to change one file.' };
    expect(r.failAll([other])).toEqual([{ ...other, files: ['ro/new.txt'] }]);
  });

  it('forgets a path (its warning goes) when a completed cycle looked at it and it did not fail', () => {
    const r = new PathRetries({ now: clock().now });
    r.failAll([{ ...denied, files: ['ro/a', 'ro/b', 'x/c'] }]);
    expect(r.warnings()).toEqual([{ ...denied, files: ['ro/a', 'ro/b', 'x/c'] }]);
    // Looked at ro/a and ro/b; ro/b failed again; x/c not looked at.
    const local = snap({ dirs: [['ro', ['a', 'b']]] });
    expect(r.settle((p) => snapshotCovers(local, p), new Set(['ro/b']), new Set())).toEqual(['ro/a']);
    expect(r.warnings()).toEqual([{ ...denied, files: ['ro/b', 'x/c'] }]);
    // A full compare covers everything, except what was held out of it.
    expect(r.settle(() => true, new Set(), new Set(['x/c']))).toEqual(['ro/b']);
    expect(r.has('x/c')).toBe(true);
  });

  it('holds a path out of cycles until its try is due', () => {
    const c = clock();
    const r = new PathRetries({ now: c.now });
    r.fail('big.bin', { kind: 'disk-full', message: 'big.bin (2.0 MB) does not fit' }, { hold: true });
    r.fail('ro/x', denied);
    expect([...r.held()]).toEqual(['big.bin']);
    c.t += 5000;
    expect([...r.held()]).toEqual([]);
    expect(r.takeDue().sort()).toEqual(['big.bin', 'ro/x']);
  });
});

describe('poke', () => {
  it('tries a failing path now when a change was seen above it, at most once per 2 s after a failure', () => {
    const c = clock();
    const r = new PathRetries({ now: c.now });
    r.fail('ro/new.txt', denied);
    r.fail('other/x', denied);
    const near = (p: string) => snapshotTouchesAbove(snap({ dirs: [['ro', 'all']] }), p);
    // Just failed: not yet (a folder's own activity must not make a tight loop).
    expect(r.poke(near)).toBe(0);
    c.t += 2000;
    expect(r.poke(near)).toBe(1);
    expect(r.takeDue()).toEqual(['ro/new.txt']);
    expect(r.nextDueInMs()).toBe(3000); // other/x keeps its back-off
  });

  it('snapshotTouchesAbove: the folder, its listing or the name leading to the path; not the path alone', () => {
    expect(snapshotTouchesAbove(snap({ dirs: [['ro', 'all']] }), 'ro/new.txt')).toBe(true);
    expect(snapshotTouchesAbove(snap({ dirs: [['', ['ro']]] }), 'ro/sub/new.txt')).toBe(true);
    expect(snapshotTouchesAbove(snap({ dirs: [['', ['rx']]] }), 'ro/new.txt')).toBe(false);
    expect(snapshotTouchesAbove(snap({ dirs: [['ro/new.txt', 'all']] }), 'ro/new.txt')).toBe(false);
    expect(snapshotTouchesAbove(snap({ trees: ['ro'] }), 'ro/new.txt')).toBe(true);
    expect(snapshotTouchesAbove(snap({ dirs: [['elsewhere', 'all']] }), 'ro/new.txt')).toBe(false);
  });
});

describe('snapshotCovers', () => {
  it('full, trees, named children, whole directories and the folder itself', () => {
    expect(snapshotCovers(snap({ full: true }), 'a/b')).toBe(true);
    expect(snapshotCovers(snap({ trees: ['a'] }), 'a/b/c')).toBe(true);
    expect(snapshotCovers(snap({ trees: ['a'] }), 'ab')).toBe(false);
    expect(snapshotCovers(snap({ dirs: [['a', ['b']]] }), 'a/b')).toBe(true);
    expect(snapshotCovers(snap({ dirs: [['a', ['b']]] }), 'a/c')).toBe(false);
    expect(snapshotCovers(snap({ dirs: [['', ['top']]] }), 'top')).toBe(true);
    expect(snapshotCovers(snap({ dirs: [['a', 'all']] }), 'a/z')).toBe(true);
    expect(snapshotCovers(snap({ dirs: [['a', 'all']] }), 'a/z/deeper')).toBe(false);
    expect(snapshotCovers(snap({ since: '123' }), 'a')).toBe(false);
  });
});

describe('dedupeWarnings and holdingExcluder', () => {
  it('shows the same warning once, with the files of all', () => {
    const v: ErrorInfo = { kind: 'vanished', message: 'Some files disappeared.' };
    expect(dedupeWarnings([v, v, { ...v, files: ['a'] }, { ...v, files: ['b', 'a'] }])).toEqual([
      { ...v, files: ['a', 'b'] },
    ]);
  });

  it('leaves held paths out, and sends no whole folders meanwhile', () => {
    const inner = { ignores: (p: string) => p.endsWith('.tmp'), rsyncRules: () => ['*.tmp'] };
    expect(holdingExcluder(inner, new Set())).toBe(inner);
    const ex = holdingExcluder(inner, new Set(['big.bin']));
    expect(ex.ignores('big.bin', false)).toBe(true);
    expect(ex.ignores('x.tmp', false)).toBe(true);
    expect(ex.ignores('small.txt', false)).toBe(false);
    expect(ex.rsyncRules?.()).toBeNull();
  });
});

describe('unfit files', () => {
  it('takes the files of a disk-full error, relative to the root, partial dir stripped', () => {
    expect(
      unfitFiles({ kind: 'disk-full', message: 'full', files: ['big.bin', '.lipsync/partial/other.bin', '/abs'] }),
    ).toEqual(['big.bin', 'other.bin']);
    expect(unfitFiles({ kind: 'disk-full', message: 'full' })).toBeNull();
    expect(unfitFiles({ kind: 'permission-denied', message: 'x', files: ['a'] })).toBeNull();
  });

  it('names the file, its size, the free space and what to free', () => {
    const w = unfitWarning(
      'videos/big.bin',
      { size: 3 * 1024 * 1024, free: 1024 * 1024 },
      { side: 'remote', localRoot: '/home/me/p', remote: { kind: 'ssh', host: 'nas', path: '/srv/p' } },
    );
    expect(w.kind).toBe('disk-full');
    expect(w.files).toEqual(['videos/big.bin']);
    expect(w.message).toBe(
      'videos/big.bin (3.0 MiB) does not fit on nas: the disk holding /srv/p is full (1.0 MiB free).',
    );
    expect(w.fix).toContain('Free at least 2.0 MiB');
    expect(w.fix).toContain('/srv/p/.lipsync/trash');
    expect(w.fix).toContain('tries this file again by itself');
  });
});
