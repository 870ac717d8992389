import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExcluder } from '../../electron/engine/excludes.js';
import {
  compareDir,
  hashFile,
  isRacy,
  lstatLocal,
  sameAsEntry,
  walk,
  type ScanChange,
  type WalkItem,
} from '../../electron/engine/scan.js';
import { StateDb } from '../../electron/engine/state/db.js';
import type { Entry, LocalStat } from '../../electron/engine/types.js';

let tmp: string;
let root: string;
let db: StateDb;
const noExcludes = createExcluder([]);

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const abs = (rel: string): string => path.join(root, rel);
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

function write(rel: string, content = 'x', mode?: number): void {
  fs.mkdirSync(path.dirname(abs(rel)), { recursive: true });
  fs.writeFileSync(abs(rel), content);
  if (mode !== undefined) fs.chmodSync(abs(rel), mode);
}

async function stat(rel: string): Promise<LocalStat> {
  const s = await lstatLocal(abs(rel));
  if (!s) throw new Error(`no stat for ${rel}`);
  return s;
}

/** An entry recorded well after the file's mtime (not racy) unless told otherwise. */
async function record(rel: string, over: Partial<Entry> = {}): Promise<Entry> {
  const s = await stat(rel);
  const e: Entry = {
    ...s,
    path: rel,
    hash: null,
    syncedAtNs: s.mtimeNs + 10_000_000_000n,
    remoteSize: null,
    remoteMtimeNs: null,
    ...over,
  };
  db.upsert([e]);
  return e;
}

function summarize(changes: (ScanChange | WalkItem)[]): string[] {
  return changes.map((c) => `${c.type} ${c.path}`);
}

async function collect(start: string, excluder = noExcludes, opts?: Parameters<typeof walk>[4]): Promise<WalkItem[]> {
  const out: WalkItem[] = [];
  for await (const item of walk(root, db, start, excluder, opts)) out.push(item);
  return out;
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lipsync-scan-'));
  root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  db = StateDb.open(path.join(tmp, 'state', 'db.sqlite'));
});

afterEach(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lstatLocal', () => {
  it('describes files, directories and symlinks', async () => {
    write('f', 'hello', 0o750);
    fs.mkdirSync(abs('d'), { mode: 0o700 });
    fs.chmodSync(abs('d'), 0o700);
    fs.symlinkSync('../some/target', abs('l'));

    const f = await stat('f');
    const st = fs.lstatSync(abs('f'), { bigint: true });
    expect(f).toEqual({ kind: 'file', size: 5, mtimeNs: st.mtimeNs, mode: 0o750, ino: st.ino, target: null });

    const d = await stat('d');
    expect(d).toMatchObject({ kind: 'dir', size: 0, mode: 0o700, target: null });

    const l = await stat('l');
    expect(l).toMatchObject({ kind: 'symlink', target: '../some/target' });
    expect(typeof l.ino).toBe('bigint');
  });

  it('keeps setuid/setgid/sticky bits but not the file type', async () => {
    write('s', 'x');
    fs.chmodSync(abs('s'), 0o4755);
    expect((await stat('s')).mode).toBe(0o4755);
  });

  it('returns null for missing paths, paths under a file, and special files', async () => {
    write('file');
    expect(await lstatLocal(abs('missing'))).toBeNull();
    expect(await lstatLocal(abs('file/child'))).toBeNull();
    execFileSync('mkfifo', [abs('fifo')]);
    expect(await lstatLocal(abs('fifo'))).toBeNull();
  });
});

describe('sameAsEntry / isRacy / hashFile', () => {
  const base: Entry = {
    path: 'p',
    kind: 'file',
    size: 3,
    mtimeNs: 1_000_000_000_000n,
    mode: 0o644,
    ino: 1n,
    target: null,
    hash: null,
    syncedAtNs: 2_000_000_000_000n,
    remoteSize: null,
    remoteMtimeNs: null,
  };
  const s = (over: Partial<LocalStat>): LocalStat => ({
    kind: 'file',
    size: 3,
    mtimeNs: 1_000_000_000_000n,
    mode: 0o644,
    ino: 1n,
    target: null,
    ...over,
  });

  it('compares files by size, mtime and mode, not inode', () => {
    expect(sameAsEntry(s({}), base)).toBe(true);
    expect(sameAsEntry(s({ ino: 99n }), base)).toBe(true);
    expect(sameAsEntry(s({ size: 4 }), base)).toBe(false);
    expect(sameAsEntry(s({ mtimeNs: base.mtimeNs + 1n }), base)).toBe(false);
    expect(sameAsEntry(s({ mode: 0o755 }), base)).toBe(false);
    expect(sameAsEntry(s({ kind: 'dir', size: 0 }), base)).toBe(false);
  });

  it('compares symlinks by target and dirs by mode', () => {
    const link: Entry = { ...base, kind: 'symlink', target: 'a', mode: 0o777 };
    expect(sameAsEntry(s({ kind: 'symlink', target: 'a', mtimeNs: 5n, size: 1 }), link)).toBe(true);
    expect(sameAsEntry(s({ kind: 'symlink', target: 'b' }), link)).toBe(false);
    const dir: Entry = { ...base, kind: 'dir', size: 0, mode: 0o755 };
    expect(sameAsEntry(s({ kind: 'dir', size: 0, mode: 0o755, mtimeNs: 42n }), dir)).toBe(true);
    expect(sameAsEntry(s({ kind: 'dir', size: 0, mode: 0o700 }), dir)).toBe(false);
  });

  it('treats a file as racy when its mtime is not clearly before the sync', () => {
    const synced = 10_000_000_000_000n;
    expect(isRacy(s({ mtimeNs: synced - 3_000_000_000n }), synced)).toBe(false);
    expect(isRacy(s({ mtimeNs: synced - 2_000_000_000n }), synced)).toBe(false);
    expect(isRacy(s({ mtimeNs: synced - 1_999_999_999n }), synced)).toBe(true);
    expect(isRacy(s({ mtimeNs: synced }), synced)).toBe(true);
    expect(isRacy(s({ mtimeNs: synced + 1_000_000_000n }), synced)).toBe(true);
    expect(isRacy(s({ kind: 'dir', mtimeNs: synced }), synced)).toBe(false);
  });

  it('hashes a file (sha256 hex), also one larger than the read buffer', async () => {
    write('small', 'hello');
    expect(await hashFile(abs('small'))).toBe(sha('hello'));
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    fs.writeFileSync(abs('big'), big);
    expect(await hashFile(abs('big'))).toBe(sha(big));
    await expect(hashFile(abs('none'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('hashes a small file in one read, and one that grew past its size hint in full', async () => {
    write('small', 'hello');
    expect(await hashFile(abs('small'), 5)).toBe(sha('hello'));
    write('empty', '');
    expect(await hashFile(abs('empty'), 0)).toBe(sha(''));
    const limit = Buffer.alloc(64 * 1024, 3);
    fs.writeFileSync(abs('limit'), limit);
    expect(await hashFile(abs('limit'), limit.length)).toBe(sha(limit));
    // Stat said 5 bytes, but it is bigger by the time it is read.
    const grown = Buffer.alloc(200 * 1024 + 1, 9);
    fs.writeFileSync(abs('grown'), grown);
    expect(await hashFile(abs('grown'), 5)).toBe(sha(grown));
    await expect(hashFile(abs('none'), 5)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('compareDir', () => {
  it('reports added, modified and deleted children, and the subdirs to descend', async () => {
    write('same', 'same');
    write('changed', 'v1');
    write('gone', 'bye');
    fs.mkdirSync(abs('olddir'));
    await record('same');
    await record('changed');
    await record('gone');
    await record('olddir');
    fs.rmSync(abs('gone'));
    write('changed', 'v2 longer');
    write('new', 'n');
    fs.mkdirSync(abs('newdir'));

    const res = await compareDir(root, db, '', noExcludes);
    expect(summarize(res.changes)).toEqual(['modified changed', 'deleted gone', 'added new', 'added newdir']);
    expect(res.subdirs).toEqual(['newdir', 'olddir']);
    expect(res.skipped).toEqual([]);

    const added = res.changes.find((c) => c.path === 'new');
    expect(added).toMatchObject({ type: 'added', stat: { kind: 'file', size: 1 } });
    const mod = res.changes.find((c) => c.path === 'changed');
    expect(mod?.type === 'modified' && mod.entry.size).toBe(2);
    expect(mod?.type === 'modified' && mod.stat.size).toBe(9);
    const del = res.changes.find((c) => c.path === 'gone');
    expect(del?.type === 'deleted' && del.entry.path).toBe('gone');
  });

  it('works on a nested directory and only looks at direct children', async () => {
    write('a/b/c/deep', '1');
    write('a/b/x', '1');
    await record('a');
    await record('a/b');
    const res = await compareDir(root, db, 'a/b', noExcludes);
    expect(summarize(res.changes)).toEqual(['added a/b/c', 'added a/b/x']);
    expect(res.subdirs).toEqual(['a/b/c']);
  });

  it('reports a kind change as modified with different kinds', async () => {
    write('x', 'file');
    fs.mkdirSync(abs('y'));
    await record('x');
    await record('y');
    fs.rmSync(abs('x'));
    fs.mkdirSync(abs('x'));
    fs.rmdirSync(abs('y'));
    fs.symlinkSync('x', abs('y'));

    const res = await compareDir(root, db, '', noExcludes);
    expect(res.changes.map((c) => c.type === 'modified' && `${c.path}: ${c.entry.kind}->${c.stat.kind}`)).toEqual([
      'x: file->dir',
      'y: dir->symlink',
    ]);
    expect(res.subdirs).toEqual(['x']);
  });

  it('reports symlink target changes and mode changes', async () => {
    fs.symlinkSync('t1', abs('link'));
    write('script', '#!/bin/sh', 0o644);
    fs.mkdirSync(abs('d'));
    fs.chmodSync(abs('d'), 0o755);
    await record('link');
    await record('script');
    await record('d');

    expect((await compareDir(root, db, '', noExcludes)).changes).toEqual([]);

    fs.unlinkSync(abs('link'));
    fs.symlinkSync('t2', abs('link'));
    fs.chmodSync(abs('script'), 0o755);
    fs.chmodSync(abs('d'), 0o700);
    const res = await compareDir(root, db, '', noExcludes);
    expect(summarize(res.changes)).toEqual(['modified d', 'modified link', 'modified script']);
    const link = res.changes.find((c) => c.path === 'link');
    expect(link?.type === 'modified' && [link.entry.target, link.stat.target]).toEqual(['t1', 't2']);
    const script = res.changes.find((c) => c.path === 'script');
    expect(script?.type === 'modified' && script.stat.mode).toBe(0o755);
  });

  it('neither reports nor descends into excluded names, and never reports them deleted', async () => {
    const ex = createExcluder(['*.log', 'build/', 'cache']);
    write('app.log', 'l');
    write('build/out.o', 'o');
    write('build.txt', 'b');
    write('src/build', 'a file named build is not excluded');
    write('.DS_Store', 'x');
    fs.mkdirSync(abs('.lipsync'));
    write('kept.log', 'k');
    await record('kept.log'); // synced before the user excluded *.log
    write('cache', 'c');
    await record('cache');
    fs.rmSync(abs('cache')); // gone, but excluded: not a deletion to propagate
    db.upsert([
      {
        ...(await stat('build.txt')),
        path: 'old.log',
        hash: null,
        syncedAtNs: 0n,
        remoteSize: null,
        remoteMtimeNs: null,
      },
    ]);

    const res = await compareDir(root, db, '', ex);
    expect(summarize(res.changes)).toEqual(['added build.txt', 'added src']);
    expect(res.subdirs).toEqual(['src']);
    const sub = await compareDir(root, db, 'src', ex);
    expect(summarize(sub.changes)).toEqual(['added src/build']);
    expect(sub.subdirs).toEqual([]);
  });

  it('hashes racily clean files and compares the hash', async () => {
    write('r', 'hello');
    // Same size and mtime as recorded, content written again within the timestamp granularity.
    const s = await stat('r');
    const racy = { syncedAtNs: s.mtimeNs + 500_000_000n };
    db.upsert([{ ...s, path: 'r', hash: sha('hello'), remoteSize: null, remoteMtimeNs: null, ...racy }]);
    expect((await compareDir(root, db, '', noExcludes)).changes).toEqual([]);

    db.upsert([{ ...s, path: 'r', hash: sha('HELLO'), remoteSize: null, remoteMtimeNs: null, ...racy }]);
    const res = await compareDir(root, db, '', noExcludes);
    expect(summarize(res.changes)).toEqual(['modified r']);

    // No hash recorded for a racy entry: it must be treated as modified.
    db.upsert([{ ...s, path: 'r', hash: null, remoteSize: null, remoteMtimeNs: null, ...racy }]);
    expect(summarize((await compareDir(root, db, '', noExcludes)).changes)).toEqual(['modified r']);

    // Not racy: the stat is trusted and the content is not read.
    db.upsert([
      {
        ...s,
        path: 'r',
        hash: sha('HELLO'),
        remoteSize: null,
        remoteMtimeNs: null,
        syncedAtNs: s.mtimeNs + 5_000_000_000n,
      },
    ]);
    expect((await compareDir(root, db, '', noExcludes)).changes).toEqual([]);
  });

  it('skips names that are not valid UTF-8, without touching the DB entries of valid names', async () => {
    fs.mkdirSync(abs('d'));
    const bad = Buffer.concat([Buffer.from(abs('d') + '/'), Buffer.from([0x61, 0xff, 0x62])]);
    fs.writeFileSync(bad, 'x');
    write('d/good-\u00e9', 'y');
    const res = await compareDir(root, db, 'd', noExcludes);
    expect(summarize(res.changes)).toEqual(['added d/good-\u00e9']);
    expect(res.skipped).toHaveLength(1);
    expect(res.skipped[0]!.reason).toBe('name is not valid UTF-8');
    expect(res.skipped[0]!.path.startsWith('d/a')).toBe(true);
  });

  it('skips special files, and reports a synced file replaced by one as deleted', async () => {
    write('p', 'x');
    await record('p');
    fs.rmSync(abs('p'));
    execFileSync('mkfifo', [abs('p')]);
    execFileSync('mkfifo', [abs('q')]);
    const res = await compareDir(root, db, '', noExcludes);
    expect(summarize(res.changes)).toEqual(['deleted p']);
    expect(res.skipped.map((s) => s.path)).toEqual(['p', 'q']);
  });

  it('reports all DB children deleted when the directory vanished', async () => {
    write('d/a', '1');
    write('d/sub/b', '2');
    write('d/skip.log', '3');
    for (const p of ['d', 'd/a', 'd/sub', 'd/sub/b', 'd/skip.log']) await record(p);
    fs.rmSync(abs('d'), { recursive: true });
    const res = await compareDir(root, db, 'd', createExcluder(['*.log']));
    expect(summarize(res.changes)).toEqual(['deleted d/a', 'deleted d/sub']);
    expect(res.subdirs).toEqual([]);

    // Replaced by a file: the same.
    write('d', 'now a file');
    expect(summarize((await compareDir(root, db, 'd', noExcludes)).changes)).toEqual([
      'deleted d/a',
      'deleted d/skip.log',
      'deleted d/sub',
    ]);
  });

  it('does not read a directory through a symlink that replaced it', async () => {
    write('d/a', '1');
    write('elsewhere/other', '2');
    await record('d');
    await record('d/a');
    fs.rmSync(abs('d'), { recursive: true });
    fs.symlinkSync('elsewhere', abs('d'));
    const res = await compareDir(root, db, 'd', noExcludes);
    expect(summarize(res.changes)).toEqual(['deleted d/a']);
    expect(summarize((await compareDir(root, db, '', noExcludes)).changes)).toEqual(['modified d', 'added elsewhere']);
  });

  it('throws instead of deleting everything when the root itself is missing', async () => {
    write('a');
    await record('a');
    fs.rmSync(root, { recursive: true });
    await expect(compareDir(root, db, '', noExcludes)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('skips an unreadable directory without reporting deletions', async () => {
    const dbFile = path.join(tmp, 'state', 'db.sqlite');
    write('locked/a', '1');
    await record('locked');
    await record('locked/a');
    db.close();
    fs.chmodSync(abs('locked'), 0o000);
    // Root reads any directory, so as root the compare runs in a child process as `nobody`.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      for (let d = tmp; d !== path.dirname(d); d = path.dirname(d))
        if (d.startsWith(os.tmpdir() + '/')) fs.chmodSync(d, 0o755);
      fs.chmodSync(path.dirname(dbFile), 0o777);
      for (const f of fs.readdirSync(path.dirname(dbFile))) fs.chmodSync(path.join(path.dirname(dbFile), f), 0o666);
    }
    const outDir = path.resolve('out/electron/engine');
    const code = `
      const { compareDir } = await import(${JSON.stringify(path.join(outDir, 'scan.js'))});
      const { StateDb } = await import(${JSON.stringify(path.join(outDir, 'state/db.js'))});
      const { createExcluder } = await import(${JSON.stringify(path.join(outDir, 'excludes.js'))});
      const db = StateDb.open(${JSON.stringify(dbFile)});
      const res = await compareDir(${JSON.stringify(root)}, db, 'locked', createExcluder([]));
      process.stdout.write(JSON.stringify({ uid: process.getuid(), changes: res.changes.length, skipped: res.skipped }));
    `;
    try {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
        encoding: 'utf8',
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      const res = JSON.parse(out);
      expect(res.uid).not.toBe(0);
      expect(res.changes).toBe(0);
      expect(res.skipped).toEqual([{ path: 'locked', reason: expect.stringMatching(/EACCES/) }]);
    } finally {
      fs.chmodSync(abs('locked'), 0o755);
      db = StateDb.open(dbFile);
    }
  });
});

describe('walk', () => {
  it('descends depth-first through the whole tree', async () => {
    write('a/x', '1');
    write('a/b/y', '2');
    write('c', '3');
    write('d/e/f/g', '4');
    const items = await collect('');
    expect(summarize(items)).toEqual([
      'added a',
      'added c',
      'added d',
      'added a/b',
      'added a/x',
      'added a/b/y',
      'added d/e',
      'added d/e/f',
      'added d/e/f/g',
    ]);
    // Starting below the root.
    expect(summarize(await collect('d/e'))).toEqual(['added d/e/f', 'added d/e/f/g']);
  });

  it('respects descend, which sees the subdir and its change', async () => {
    write('moved/x', '1');
    write('moved/sub/y', '1');
    write('known/z', '1');
    await record('known');
    const asked: string[] = [];
    const items = await collect('', noExcludes, {
      descend: (dir, change) => {
        asked.push(`${dir}:${change?.type ?? 'none'}`);
        return dir !== 'moved';
      },
    });
    expect(asked).toEqual(['known:none', 'moved:added']);
    expect(summarize(items)).toEqual(['added moved', 'added known/z']);
  });

  it('yields a single deleted change for a deleted directory', async () => {
    write('gone/a', '1');
    write('gone/sub/b', '2');
    write('gone/sub/deeper/c', '3');
    write('stay', 's');
    for await (const item of walk(root, db, '', noExcludes)) {
      if (item.type === 'added')
        db.upsert([
          {
            ...item.stat,
            path: item.path,
            hash: null,
            syncedAtNs: item.stat.mtimeNs + 10_000_000_000n,
            remoteSize: null,
            remoteMtimeNs: null,
          },
        ]);
    }
    expect(db.count()).toBe(7);
    expect(await collect('')).toEqual([]);
    fs.rmSync(abs('gone'), { recursive: true });
    const items = await collect('');
    expect(summarize(items)).toEqual(['deleted gone']);
  });

  it('yields skipped items', async () => {
    fs.writeFileSync(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0xc3, 0x28])]), 'x');
    const items = await collect('');
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ type: 'skipped', reason: 'name is not valid UTF-8' });
  });

  it('walks 20,000 files in 200 dirs, then finds nothing once they are recorded', async () => {
    for (let d = 0; d < 200; d++) {
      const dir = abs(`d${d}`);
      fs.mkdirSync(dir);
      for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(dir, `f${f}`), `${d}/${f}`);
    }
    // Files in even dirs were synced just now (racy: hashed on the next walk), the others long
    // after their mtime (the stat is trusted).
    const now = nowNs();
    const records: Entry[] = [];
    let files = 0;
    let dirs = 0;
    for await (const item of walk(root, db, '', noExcludes)) {
      if (item.type !== 'added') throw new Error(`unexpected ${item.type} ${item.path}`);
      if (item.stat.kind === 'file') files++;
      else dirs++;
      const [d, f] = item.path.split('/');
      const hash = item.stat.kind === 'file' ? sha(`${d!.slice(1)}/${f!.slice(1)}`) : null;
      const syncedAtNs = Number(d!.slice(1)) % 2 === 0 ? now : item.stat.mtimeNs + 10_000_000_000n;
      records.push({
        ...item.stat,
        path: item.path,
        hash,
        syncedAtNs,
        remoteSize: item.stat.size,
        remoteMtimeNs: item.stat.mtimeNs,
      });
    }
    expect(files).toBe(20_000);
    expect(dirs).toBe(200);
    db.upsert(records);
    expect(db.count()).toBe(20_200);

    expect(await collect('')).toEqual([]);

    // Changes deep inside are found: one racy file rewritten with the same size and mtime
    // (only the hash can tell), one ordinary modification.
    // (utimes cannot restore nanoseconds exactly, so the entry takes the new stat instead.)
    fs.writeFileSync(abs('d122/f45'), '122/46');
    const racyNow = await stat('d122/f45');
    db.upsert([{ ...db.get('d122/f45')!, ...racyNow }]);
    const racyEntry = db.get('d122/f45')!;
    expect(racyEntry.hash).toBe(sha('122/45'));
    expect(sameAsEntry(racyNow, racyEntry)).toBe(true);
    expect(isRacy(racyNow, racyEntry.syncedAtNs)).toBe(true);
    fs.writeFileSync(abs('d123/f45'), 'changed!');
    expect(summarize(await collect(''))).toEqual(['modified d122/f45', 'modified d123/f45']);
  });
});
