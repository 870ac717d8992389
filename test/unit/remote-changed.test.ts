// remoteChanged: has the server's side of a path changed since the base? (docs/sync-semantics.md,
// "Finding changes" item 2.)
import { describe, expect, it } from 'vitest';
import { remoteChanged } from '../../electron/engine/cycle/compare.js';
import type { Entry, RemoteStat } from '../../electron/engine/types.js';

const base = (over: Partial<Entry> = {}): Entry => ({
  path: 'p',
  kind: 'dir',
  size: 0,
  mtimeNs: 5_000_000_000n,
  mode: 0o755,
  ino: 1n,
  target: null,
  hash: null,
  syncedAtNs: 1n,
  remoteSize: 4096,
  remoteMtimeNs: 5_000_000_000n,
  remoteIno: 2n,
  remoteMode: 0o755,
  ...over,
});
const dir = (mode: number, over: Partial<RemoteStat> = {}): RemoteStat => ({
  kind: 'dir',
  size: 4096,
  mtimeNs: 9_000_000_000n,
  mode,
  ino: 2n,
  target: null,
  ...over,
});

describe('remoteChanged for a folder', () => {
  it('is its permission bits against the server bits of the base; its mtime and size do not count', () => {
    expect(remoteChanged(dir(0o755, { size: 8192 }), base())).toBe(false);
    expect(remoteChanged(dir(0o700), base())).toBe(true);
    expect(remoteChanged(dir(0o2755), base())).toBe(true);
  });

  it("compares with the server's bits when they differ from this side's (both made it, another umask)", () => {
    expect(remoteChanged(dir(0o775), base({ mode: 0o755, remoteMode: 0o775 }))).toBe(false);
    expect(remoteChanged(dir(0o755), base({ mode: 0o755, remoteMode: 0o775 }))).toBe(true);
  });

  it("falls back to this side's bits when the base does not know the server's (an older database)", () => {
    expect(remoteChanged(dir(0o755), base({ remoteMode: null }))).toBe(false);
    expect(remoteChanged(dir(0o750), base({ remoteMode: null }))).toBe(true);
    expect(remoteChanged(dir(0o750), base({ remoteMode: undefined }))).toBe(true);
  });

  it('a folder that became something else, or is gone, changed', () => {
    expect(remoteChanged({ ...dir(0o755), kind: 'file' }, base())).toBe(true);
    expect(remoteChanged(null, base())).toBe(true);
  });
});
