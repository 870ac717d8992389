import { describe, expect, it } from 'vitest';
import { WriteTracker } from '../../electron/engine/writing.js';
import { anchoredRsyncPattern, ownSnapshot } from '../../electron/engine/cycle/compare.js';

/** A tracker on a hand-driven clock; `due` collects what it reports. */
function tracker(quietMs = 2000, maxDelayMs = 30_000) {
  let t = 1_000_000;
  const due: string[] = [];
  const w = new WriteTracker({ quietMs, maxDelayMs, onDue: (p) => due.push(...p), now: () => t });
  return {
    w,
    due,
    advance(ms: number) {
      t += ms;
      w.tick();
    },
  };
}

describe('WriteTracker (files still being written, rules W1–W3)', () => {
  it('holds a file from its first write until it is closed', () => {
    const { w, due, advance } = tracker();
    w.writing('dl.bin');
    expect(w.held('dl.bin')).toBe(true);
    advance(500);
    w.writing('dl.bin');
    advance(500);
    expect(w.held('dl.bin')).toBe(true);
    expect(due).toEqual([]);
    w.done('dl.bin');
    expect(w.held('dl.bin')).toBe(false);
    expect(w.size).toBe(0);
    w.stop();
  });

  it('lets a file go once it has been quiet for quietMs, and forgets it once taken', () => {
    const { w, due, advance } = tracker(2000);
    w.writing('a');
    advance(1999);
    expect(w.held('a')).toBe(true);
    advance(1);
    expect(due).toEqual(['a']);
    expect(w.held('a')).toBe(false);
    w.taken('a');
    expect(w.size).toBe(0);
    w.stop();
  });

  it('a quiet file written again is held again', () => {
    const { w, due, advance } = tracker(2000);
    w.writing('a');
    advance(2500);
    expect(due).toEqual(['a']);
    w.writing('a');
    expect(w.held('a')).toBe(true);
    w.stop();
  });

  it('sends a file that never stops changing every maxDelayMs, as a snapshot', () => {
    const { w, due, advance } = tracker(2000, 10_000);
    w.writing('live.log');
    for (let i = 0; i < 19; i++) {
      advance(500);
      w.writing('live.log');
    }
    expect(due).toEqual([]);
    advance(500); // 10 s since the first write, never quiet
    expect(due).toEqual(['live.log']);
    // Still written while due by age: stays due until a cycle takes it.
    w.writing('live.log');
    expect(w.held('live.log')).toBe(false);
    w.taken('live.log');
    // Still being written: a new period starts (not forgotten).
    expect(w.held('live.log')).toBe(true);
    for (let i = 0; i < 19; i++) {
      advance(500);
      w.writing('live.log');
    }
    expect(due).toEqual(['live.log']);
    advance(500);
    expect(due).toEqual(['live.log', 'live.log']);
    w.stop();
  });

  it('a deleted folder ends the hold of everything below it; heldBelow lists held files of a folder', () => {
    const { w } = tracker();
    w.writing('d/a');
    w.writing('d/e/b');
    w.writing('dx/c');
    expect(w.heldBelow('d').sort()).toEqual(['d/a', 'd/e/b']);
    w.doneBelow('d');
    expect(w.held('d/a')).toBe(false);
    expect(w.held('d/e/b')).toBe(false);
    expect(w.held('dx/c')).toBe(true);
    w.stop();
  });

  it('taken() of a file that is not due changes nothing', () => {
    const { w } = tracker();
    w.writing('a');
    w.taken('a');
    expect(w.held('a')).toBe(true);
    w.stop();
  });
});

describe('anchoredRsyncPattern', () => {
  it('anchors plain names and escapes wildcards (and then backslashes) only when a wildcard is present', () => {
    expect(anchoredRsyncPattern('dir/file.bin')).toBe('/dir/file.bin');
    expect(anchoredRsyncPattern('back\\slash')).toBe('/back\\slash');
    expect(anchoredRsyncPattern('a*b?[c]')).toBe('/a\\*b\\?\\[c]');
    expect(anchoredRsyncPattern('x\\*')).toBe('/x\\\\\\*');
  });
});

describe('ownSnapshot (W3: what a push left on the server while the file here changed)', () => {
  const file = (size: number, mtimeNs: bigint) => ({
    kind: 'file' as const,
    size,
    mtimeNs,
    mode: 0o644,
    ino: 1n,
    target: null,
  });
  const remote = (size: number, mtimeNs: bigint) => ({
    kind: 'file' as const,
    size,
    mtimeNs,
    mode: 0o644,
    ino: 2n,
    target: null,
  });
  // Measured (slow-writers.test.ts): rsync listed b.log at 7 bytes, read it at 14, and the
  // server got 14 bytes under the listed mtime; the file here was 14 bytes 11 s later.
  const decided = file(7, 1796614394549442422n);
  const now = file(14, 1796614405329442486n);

  it("takes the grown content under the listed mtime as this client's own", () => {
    expect(ownSnapshot(decided, now, remote(14, 1796614394549442422n), 7)).toBe(true);
  });
  it('takes the listed size and an mtime in between as its own', () => {
    expect(ownSnapshot(decided, now, remote(7, 1796614400000000000n), 7)).toBe(true);
  });
  it('does not take a larger file than this one has been for its own', () => {
    expect(ownSnapshot(decided, now, remote(15, 1796614394549442422n), 7)).toBe(false);
  });
  it('does not take an mtime outside the window for its own', () => {
    expect(ownSnapshot(decided, now, remote(14, 1796614300000000000n), 7)).toBe(false);
    expect(ownSnapshot(decided, now, remote(14, 1796614500000000000n), 7)).toBe(false);
  });
  it('never takes a folder or a link for a snapshot', () => {
    expect(ownSnapshot(decided, now, { ...remote(0, decided.mtimeNs), kind: 'dir' }, undefined)).toBe(false);
  });
});
