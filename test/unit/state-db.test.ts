import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, StateDb, isDamagedDbError } from '../../electron/engine/state/db.js';
import type { Entry } from '../../electron/engine/types.js';

let tmp: string;
let db: StateDb;

function entry(p: string, over: Partial<Entry> = {}): Entry {
  return {
    path: p,
    kind: 'file',
    size: 10,
    mtimeNs: 1_700_000_000_123_456_789n,
    mode: 0o644,
    ino: 1000n,
    target: null,
    hash: null,
    syncedAtNs: 1_700_000_001_000_000_000n,
    remoteSize: null,
    remoteMtimeNs: null,
    remoteIno: null,
    remoteMode: null,
    ...over,
  };
}

const dirEntry = (p: string, over: Partial<Entry> = {}): Entry =>
  entry(p, { kind: 'dir', size: 0, mode: 0o755, ...over });

function paths(entries: Iterable<Entry>): string[] {
  return [...entries].map((e) => e.path);
}

function allPaths(): string[] {
  return paths(db.iterateDescendants(''));
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lipsync-db-'));
  db = StateDb.open(path.join(tmp, 'nested', 'dirs', 'pair.sqlite'));
});

afterEach(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('StateDb.open', () => {
  it('creates the directories, the schema, WAL mode and a schema version', () => {
    const file = path.join(tmp, 'nested', 'dirs', 'pair.sqlite');
    expect(fs.existsSync(file)).toBe(true);
    expect(db.getMeta('schema_version')).toBe(String(SCHEMA_VERSION));
    expect(db.count()).toBe(0);

    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      const indexes = raw
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'")
        .all() as { name: string }[];
      expect(indexes.map((i) => i.name).sort()).toEqual(['entries_ino', 'entries_parent', 'entries_remote_ino']);
    } finally {
      raw.close();
    }
  });

  it('reopens an existing database with its data', () => {
    db.upsert([entry('a'), dirEntry('d'), entry('d/x')]);
    db.setMeta('lastSyncAt', '12345');
    db.close();
    db = StateDb.open(path.join(tmp, 'nested', 'dirs', 'pair.sqlite'));
    expect(db.count()).toBe(3);
    expect(db.getMeta('lastSyncAt')).toBe('12345');
    expect(db.getMeta('schema_version')).toBe(String(SCHEMA_VERSION));
  });

  it('refuses a database from a newer schema', () => {
    db.setMeta('schema_version', String(SCHEMA_VERSION + 1));
    db.close();
    expect(() => StateDb.open(path.join(tmp, 'nested', 'dirs', 'pair.sqlite'))).toThrow(/newer/);
    db = StateDb.open(path.join(tmp, 'other.sqlite'));
  });
});

describe('StateDb files', () => {
  it('are readable by their owner only (0600): the database, its WAL and shared-memory files', () => {
    const file = path.join(tmp, 'nested', 'dirs', 'pair.sqlite');
    db.upsert([entry('a')]);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      expect(fs.existsSync(f), f).toBe(true);
      expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
    }
  });

  it('makes an existing 0644 database 0600 when it is opened', () => {
    const file = path.join(tmp, 'nested', 'dirs', 'pair.sqlite');
    db.close();
    fs.chmodSync(file, 0o644);
    db = StateDb.open(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('StateDb.openOrRebuild', () => {
  const file = () => path.join(tmp, 'nested', 'dirs', 'pair.sqlite');

  it('opens a sound database as it is', () => {
    db.upsert([entry('a')]);
    db.close();
    const r = StateDb.openOrRebuild(file());
    db = r.db;
    expect(r.damaged).toBeUndefined();
    expect(db.count()).toBe(1);
  });

  it('moves a damaged database (random bytes) aside, with its WAL, and starts an empty one', () => {
    db.upsert([entry('a'), entry('b')]);
    db.close();
    const garbage = Buffer.alloc(64 * 1024);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
    fs.writeFileSync(file(), garbage);
    expect(() => StateDb.open(file())).toThrow(/not a database|malformed/);
    const r = StateDb.openOrRebuild(file(), new Date('2026-12-07T01:02:03.456Z'));
    db = r.db;
    expect(r.damaged?.movedTo).toBe(`${file()}.damaged-20261207T010203`);
    expect(r.damaged?.reason).toMatch(/not a database|malformed/);
    // The damaged bytes are kept, byte for byte, for whoever wants to look.
    expect(fs.readFileSync(r.damaged!.movedTo).equals(garbage)).toBe(true);
    expect(db.count()).toBe(0);
    expect(db.getMeta('schema_version')).toBe(String(SCHEMA_VERSION));
    expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
    db.upsert([entry('c')]);
    expect(db.count()).toBe(1);
  });

  it('throws other errors as they are (a newer schema is not damage)', () => {
    db.setMeta('schema_version', String(SCHEMA_VERSION + 1));
    db.close();
    let err: unknown;
    try {
      StateDb.openOrRebuild(file());
    } catch (e) {
      err = e;
    }
    expect(String(err)).toMatch(/newer/);
    expect(isDamagedDbError(err)).toBe(false);
    expect(fs.readdirSync(path.dirname(file())).filter((f) => f.includes('damaged'))).toEqual([]);
    db = StateDb.open(path.join(tmp, 'other.sqlite'));
  });
});

describe('StateDb entries', () => {
  it('round-trips every field exactly, bigints included', () => {
    const big = entry('f', {
      size: 2 ** 40 + 7,
      mtimeNs: 9_007_199_254_740_993_123n, // far beyond 2^53
      mode: 0o4755,
      ino: 18_446_744_073_709_551n,
      hash: 'ab'.repeat(32),
      syncedAtNs: 9_223_372_036_854_775_807n, // int64 max
      remoteSize: 2 ** 40 + 9,
      remoteMtimeNs: 1_234_567_890_123_456_789n,
      remoteMode: 0o4750,
    });
    const link = entry('l', { kind: 'symlink', size: 6, target: '../x/y', mode: 0o777, ino: 5n });
    db.upsert([big, link]);
    expect(db.get('f')).toEqual(big);
    expect(db.get('l')).toEqual(link);
    expect(typeof db.get('f')!.mtimeNs).toBe('bigint');
    expect(typeof db.get('f')!.size).toBe('number');
    expect(db.get('missing')).toBeUndefined();
  });

  it('upsert replaces an existing row', () => {
    db.upsert([entry('a', { size: 1 })]);
    db.upsert([entry('a', { size: 2, hash: 'h' })]);
    expect(db.count()).toBe(1);
    expect(db.get('a')).toMatchObject({ size: 2, hash: 'h' });
  });

  it('computes parent and name, and lists direct children only', () => {
    db.upsert([dirEntry('a'), entry('a/x'), dirEntry('a/b'), entry('a/b/y'), entry('ab'), entry('a.b'), entry('top')]);
    expect(paths(db.children(''))).toEqual(['a', 'a.b', 'ab', 'top']);
    expect(paths(db.children('a'))).toEqual(['a/b', 'a/x']);
    expect(paths(db.children('a/b'))).toEqual(['a/b/y']);
    expect(db.children('nope')).toEqual([]);
  });

  it('does not list a stored root row as its own child', () => {
    db.upsert([dirEntry(''), entry('a')]);
    expect(paths(db.children(''))).toEqual(['a']);
    expect(allPaths()).toEqual(['a']);
    expect(db.get('')?.kind).toBe('dir');
  });

  it('byInode finds every path with that inode', () => {
    db.upsert([
      entry('a', { ino: 7n }),
      entry('d/b', { ino: 7n }),
      entry('c', { ino: 8n }),
      entry('big', { ino: 2n ** 63n - 1n }),
    ]);
    expect(paths(db.byInode(7n))).toEqual(['a', 'd/b']);
    expect(paths(db.byInode(8n))).toEqual(['c']);
    expect(paths(db.byInode(2n ** 63n - 1n))).toEqual(['big']);
    expect(db.byInode(9n)).toEqual([]);
  });

  it('counts and drops the candidates of a tree, never a prefix sibling', () => {
    db.upsert([dirEntry('a'), entry('a/x'), entry('a/y'), dirEntry('a/d'), entry('a/d/z'), entry('a!'), entry('ab')]);
    db.candAdd(['a', 'a/x', 'a/y', 'a/d', 'a/d/z', 'a!', 'ab', 'a/new']);
    // Files the base knows, at or below a: a/x, a/y, a/d/z (a/new is not in the base; folders do not count).
    expect(db.candBaseFileCountIn('a')).toBe(3);
    expect(db.candBaseFileCountIn('a/d')).toBe(1);
    expect(db.candBaseFileCountIn('a/x')).toBe(1);
    expect(db.candBaseFileCount()).toBe(5);
    db.candDropTree('a');
    expect(db.candTake(100)).toEqual(['a!', 'ab']);
  });

  it('getMeta/setMeta', () => {
    expect(db.getMeta('k')).toBeUndefined();
    db.setMeta('k', 'v1');
    db.setMeta('k', 'v2');
    expect(db.getMeta('k')).toBe('v2');
  });
});

describe('iterateDescendants', () => {
  const tree = ['a', 'a/b', 'a/b/c', 'a/b/c/d', 'a/e', 'a!', 'a.b', 'a0', 'ab', 'a/b.x', 'b', 'b/a'];

  beforeEach(() => {
    db.upsert(
      tree.map((p) => (p.includes('.') || p === 'a/b/c/d' || p === 'a0' || p === 'a!' ? entry(p) : dirEntry(p))),
    );
  });

  it('yields all depths below a dir in byte order, never the dir itself or prefix siblings', () => {
    expect(paths(db.iterateDescendants('a'))).toEqual(['a/b', 'a/b.x', 'a/b/c', 'a/b/c/d', 'a/e']);
    expect(paths(db.iterateDescendants('a/b'))).toEqual(['a/b/c', 'a/b/c/d']);
    expect(paths(db.iterateDescendants('a/b/c/d'))).toEqual([]);
    expect(paths(db.iterateDescendants('zzz'))).toEqual([]);
  });

  it('yields everything for the root', () => {
    expect(allPaths()).toEqual([...tree].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  });

  it('orders by UTF-8 bytes', () => {
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (4 bytes, F0 ...) bytewise,
    // although in UTF-16 the surrogate D83D comes first.
    db.upsert([dirEntry('u'), entry('u/\u{1F600}'), entry('u/\uFF5E'), entry('u/\u00E9'), entry('u/z')]);
    expect(paths(db.iterateDescendants('u'))).toEqual(['u/z', 'u/\u00E9', 'u/\uFF5E', 'u/\u{1F600}']);
  });

  it('streams: stopping early works, and the connection is writable again afterwards', () => {
    const seen: string[] = [];
    for (const e of db.iterateDescendants('')) {
      seen.push(e.path);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['a', 'a!', 'a.b']);
    db.upsert([entry('new')]);
    expect(db.get('new')).toBeDefined();
  });

  it('allows several iterators at once', () => {
    const it1 = db.iterateDescendants('a');
    const it2 = db.iterateDescendants('a');
    expect(it1.next().value?.path).toBe('a/b');
    expect(it2.next().value?.path).toBe('a/b');
    expect(it1.next().value?.path).toBe('a/b.x');
    expect(it1.next().value?.path).toBe('a/b/c');
    expect(it2.next().value?.path).toBe('a/b.x');
    it1.return?.();
    it2.return?.();
    db.upsert([entry('after')]);
  });

  it('streams a large table lazily', () => {
    const many: Entry[] = [];
    for (let i = 0; i < 50_000; i++) many.push(entry(`big/d${i % 50}/f${String(i).padStart(6, '0')}`));
    db.upsert(many);
    const iter = db.iterateDescendants('big');
    const first = iter.next();
    expect(first.done).toBe(false);
    expect(first.value!.path).toBe('big/d0/f000000');
    iter.return?.();
    let n = 0;
    let outOfOrder = 0;
    let prev = '';
    for (const e of db.iterateDescendants('big')) {
      if (!(e.path > prev)) outOfOrder++;
      prev = e.path;
      n++;
    }
    expect(n).toBe(50_000);
    expect(outOfOrder).toBe(0);
  });
});

describe('deleteTree', () => {
  beforeEach(() => {
    db.upsert([
      dirEntry('a'),
      entry('a/x'),
      dirEntry('a/b'),
      entry('a/b/y'),
      entry('ab'),
      entry('a.b'),
      dirEntry('a0'),
      entry('a0/z'),
      entry('a!'),
    ]);
  });

  it('removes the path and all descendants, not prefix siblings', () => {
    expect(db.deleteTree('a')).toBe(4);
    expect(allPaths()).toEqual(['a!', 'a.b', 'a0', 'a0/z', 'ab']);
  });

  it('removes a single file', () => {
    expect(db.deleteTree('a/x')).toBe(1);
    expect(db.get('a/x')).toBeUndefined();
    expect(db.count()).toBe(8);
  });

  it('removes descendants even without a row for the path itself', () => {
    db.upsert([entry('ghost/1'), entry('ghost/2/3')]);
    expect(db.deleteTree('ghost')).toBe(2);
    expect(db.deleteTree('nothing')).toBe(0);
  });

  it('removes everything for the root', () => {
    expect(db.deleteTree('')).toBe(9);
    expect(db.count()).toBe(0);
  });
});

describe('renameTree', () => {
  beforeEach(() => {
    db.upsert([
      dirEntry('a', { ino: 1n }),
      entry('a/x', { ino: 2n }),
      dirEntry('a/b', { ino: 3n }),
      entry('a/b/y', { ino: 4n }),
      entry('ab', { ino: 5n }),
      entry('a.b', { ino: 6n }),
      dirEntry('a0'),
      entry('a0/z'),
    ]);
  });

  it('moves the entry and all descendants, with parents and names, leaving prefix siblings', () => {
    db.renameTree('a', 'n/m');
    expect(allPaths()).toEqual(['a.b', 'a0', 'a0/z', 'ab', 'n/m', 'n/m/b', 'n/m/b/y', 'n/m/x']);
    expect(db.get('n/m')).toMatchObject({ kind: 'dir', ino: 1n });
    expect(db.get('n/m/b/y')).toMatchObject({ ino: 4n });
    expect(paths(db.children('n'))).toEqual(['n/m']);
    expect(paths(db.children('n/m'))).toEqual(['n/m/b', 'n/m/x']);
    expect(paths(db.children('n/m/b'))).toEqual(['n/m/b/y']);
    expect(db.children('a')).toEqual([]);
    expect(paths(db.children(''))).toEqual(['a.b', 'a0', 'ab']);
  });

  it('renames to a name that shares a prefix', () => {
    db.renameTree('a/b', 'a/bb');
    expect(paths(db.iterateDescendants('a'))).toEqual(['a/bb', 'a/bb/y', 'a/x']);
    expect(paths(db.children('a/bb'))).toEqual(['a/bb/y']);
    db.renameTree('ab', 'abc');
    expect(db.get('abc')).toMatchObject({ ino: 5n });
    expect(db.get('a')).toMatchObject({ ino: 1n });
  });

  it('replaces whatever was at the target, subtree included', () => {
    db.upsert([dirEntry('t'), entry('t/old'), entry('t/x', { ino: 99n })]);
    db.renameTree('a', 't');
    expect(paths(db.iterateDescendants('t'))).toEqual(['t/b', 't/b/y', 't/x']);
    expect(db.get('t/x')!.ino).toBe(2n);
    expect(db.get('t/old')).toBeUndefined();
    expect(db.get('a')).toBeUndefined();
  });

  it('moves a file', () => {
    db.renameTree('a/x', 'x2');
    expect(db.get('x2')).toMatchObject({ ino: 2n });
    expect(paths(db.children(''))).toContain('x2');
    expect(paths(db.children('a'))).toEqual(['a/b']);
  });

  it('moves a subtree up over its own ancestor', () => {
    db.upsert([dirEntry('a/b/b'), entry('a/b/b/q')]);
    db.renameTree('a/b', 'a');
    expect(allPaths()).toEqual(['a', 'a.b', 'a/b', 'a/b/q', 'a/y', 'a0', 'a0/z', 'ab']);
    expect(db.get('a')!.ino).toBe(3n);
    expect(paths(db.children('a'))).toEqual(['a/b', 'a/y']);
    expect(paths(db.children('a/b'))).toEqual(['a/b/q']);
  });

  it('refuses to move into itself, and is a no-op onto itself', () => {
    expect(() => db.renameTree('a', 'a/b/c')).toThrow(/into itself/);
    db.renameTree('a', 'a');
    expect(db.count()).toBe(8);
  });

  it('moves non-ASCII names correctly (length is counted consistently)', () => {
    db.upsert([dirEntry('\u{1F600}é'), entry('\u{1F600}é/ñ'), dirEntry('\u{1F600}é/d'), entry('\u{1F600}é/d/ü')]);
    db.renameTree('\u{1F600}é', 'ü/\u{1F601}');
    expect(paths(db.iterateDescendants('ü/\u{1F601}'))).toEqual(['ü/\u{1F601}/d', 'ü/\u{1F601}/d/ü', 'ü/\u{1F601}/ñ']);
    expect(paths(db.children('ü/\u{1F601}/d'))).toEqual(['ü/\u{1F601}/d/ü']);
  });

  it('is atomic with an outer transaction', () => {
    expect(() =>
      db.transaction(() => {
        db.renameTree('a', 'z');
        db.deleteTree('ab');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(db.get('a')).toBeDefined();
    expect(db.get('z')).toBeUndefined();
    expect(db.get('ab')).toBeDefined();
    expect(db.transaction(() => 42)).toBe(42);
  });
});

describe('the remote permission bits (remote_mode)', () => {
  const file = () => path.join(tmp, 'nested', 'dirs', 'pair.sqlite');

  it('are added to a database of schema version 2, unknown (null) for the rows it had', () => {
    db.upsert([dirEntry('d', { remoteMode: 0o700 })]);
    db.close();
    const raw = new Database(file());
    raw.exec(
      "ALTER TABLE entries DROP COLUMN remote_mode; DROP TABLE sending; UPDATE meta SET value = '2' WHERE key = 'schema_version'",
    );
    raw.close();
    db = StateDb.open(file());
    expect(db.getMeta('schema_version')).toBe(String(SCHEMA_VERSION));
    expect(db.get('d')).toEqual(dirEntry('d', { remoteMode: null }));
    db.upsert([dirEntry('d', { remoteMode: 0o2775 })]);
    expect(db.get('d')!.remoteMode).toBe(0o2775);
  });

  it('make a folder whose mode on the server differs from them a candidate of a remote listing', () => {
    db.upsert([
      dirEntry('same', { mode: 0o755, remoteMode: 0o775 }),
      dirEntry('changed', { mode: 0o755, remoteMode: 0o775 }),
      dirEntry('old-same', { mode: 0o755, remoteMode: null }),
      dirEntry('old-changed', { mode: 0o755, remoteMode: null }),
    ]);
    const dir = (p: string, mode: number) => ({
      path: p,
      kind: 'dir' as const,
      size: 4096,
      mtimeNs: 1n,
      mode,
      ino: 7n,
      target: null,
    });
    db.rscanInsert([dir('same', 0o775), dir('changed', 0o700), dir('old-same', 0o755), dir('old-changed', 0o750)]);
    expect(db.candFromRemoteScan('', true)).toBe(2);
    expect(db.candTake(10).sort()).toEqual(['changed', 'old-changed']);
  });
});

describe('files being sent (W5)', () => {
  it('are noted before a push, read back per path, forgotten once recorded, and kept across a reopen', () => {
    const file = path.join(tmp, 'sending.sqlite');
    let d = StateDb.open(file);
    d.sendingAdd([
      { path: 'a.txt', size: 10, mtimeNs: 1_700_000_000_123_456_789n },
      { path: 'dir/b', size: 0, mtimeNs: 5n },
    ]);
    expect(d.sendingGet('a.txt')).toEqual({ size: 10, mtimeNs: 1_700_000_000_123_456_789n });
    expect(d.sendingGet('nope')).toBeUndefined();
    d.close();
    // A crash after the note: it is still there when the pair opens its database again.
    d = StateDb.open(file);
    expect(d.sendingGet('dir/b')).toEqual({ size: 0, mtimeNs: 5n });
    d.sendingDelete(['a.txt']);
    expect(d.sendingGet('a.txt')).toBeUndefined();
    expect(d.sendingGet('dir/b')).toBeDefined();
    d.close();
  });
});

describe('StateDb.count', () => {
  it('is exact after every write without staleMs; with it, may lag behind writes only within that time', () => {
    db.upsert([entry('a'), entry('b')]);
    expect(db.count()).toBe(2);
    db.upsert([entry('c')]);
    // Written since the last count, but the count is younger than a minute: given again.
    expect(db.count(60_000)).toBe(2);
    // Without staleMs, a write since always counts again.
    expect(db.count()).toBe(3);
    db.deleteTree('a');
    expect(db.count(0)).toBe(2);
    // Nothing written since: the last count, whatever its age.
    expect(db.count(60_000)).toBe(2);
    // Writes to the scratch tables count as writes too (they can only make it count again).
    db.candAdd(['x']);
    db.upsert([entry('d')]);
    expect(db.count()).toBe(3);
  });
});
