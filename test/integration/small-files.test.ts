// putSmall and fetchSmall (remote/small-files.ts, rules P1-P5 of docs/sync-semantics.md)
// against the harness sshd: the remote root is on this machine, so both sides are
// prepared and inspected directly, byte for byte and to the nanosecond.
//
// The full-disk cases NEED ROOT (a small tmpfs); they are skipped, saying so, otherwise.

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { useRemote } from '../support/remotes.js';
import { strangeNames, strangeRootName } from '../support/trees.js';
import { requireBuild } from '../support/cli.js';
import { makeClient, makeServerDir, stop, syncOk } from '../support/twoway.js';
import {
  SMALL_BATCH_BYTES,
  SMALL_BATCH_FILES,
  SMALL_FILE_MAX,
  fetchSmall,
  peekSmall,
  pickSmall,
  putSmall,
  smallFilesUsable,
  smallLimit,
  stateWord,
  type SmallItem,
  type SmallOptions,
  type SmallResult,
} from '../../electron/engine/remote/small-files.js';
import { remoteOps } from '../../electron/engine/remote/ops.js';
import { statRemote } from '../../electron/engine/remote/stat.js';
import { lstatLocalSync } from '../../electron/engine/scan.js';
import type { LocalStat, RemoteSpec } from '../../electron/engine/types.js';

const RAND = randomBytes(6).toString('hex');
const PWNED = [1, 2, 3, 4].map((i) => `/tmp/lipsync-pwned-${RAND}-${i}`);
const TRASH = '.lipsync/trash/2026-01-02/030405000';
const CAPS = { inotifywait: true, gnuFind: true };
/** An mtime with all nine digits of nanoseconds in use (Node's utimes cannot set it exactly). */
const T0 = 1_600_000_000_123_456_789n;

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('small-files.test.ts: the full-disk cases are skipped: they need root (mount -t tmpfs).');
const mounts: string[] = [];

afterAll(() => {
  for (const m of mounts.splice(0).reverse()) {
    spawnSync('umount', ['-l', m]);
    rmSync(m, { recursive: true, force: true });
  }
});

/** Sets a path's mtime to the nanosecond (GNU touch). */
function touchNs(p: string, ns: bigint): void {
  const sec = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  execFileSync('touch', ['-m', '-h', '-d', `@${sec}.${frac}`, '--', p]);
}

/** Writes `root/rel` (parents made), with `mode` and an exact mtime. */
function write(root: string, rel: string, data: string | Buffer, mtimeNs: bigint, mode = 0o644): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  chmodSync(p, mode);
  touchNs(p, mtimeNs);
}

const stat = (root: string, rel: string): LocalStat | null => lstatLocalSync(join(root, rel));
const mustStat = (root: string, rel: string): LocalStat => {
  const s = stat(root, rel);
  if (!s) throw new Error(`${rel} is missing in ${root}`);
  return s;
};
const bytes = (root: string, rel: string): Buffer => readFileSync(join(root, rel));
const ns = (root: string, rel: string): bigint => lstatSync(join(root, rel), { bigint: true }).mtimeNs;
const temps = (root: string, prefix: string): string[] =>
  existsSync(join(root, '.lipsync')) ? readdirSync(join(root, '.lipsync')).filter((n) => n.startsWith(prefix)) : [];
/** Every path below `dir`, `.lipsync` included (files and folders, relative, sorted). */
function all(dir: string, sub = ''): string[] {
  if (!existsSync(join(dir, sub))) return [];
  const out: string[] = [];
  for (const name of readdirSync(join(dir, sub))) {
    const rel = sub ? `${sub}/${name}` : name;
    const st = lstatSync(join(dir, rel));
    out.push(st.isDirectory() ? `${rel}/` : rel);
    if (st.isDirectory()) out.push(...all(dir, rel));
  }
  return out.sort();
}
const sorted = (a: string[]): string[] => [...a].sort();

/** The same file, both sides: bytes, permission bits and mtime to the nanosecond. */
function expectSameFile(a: string, b: string, rel: string): void {
  expect(bytes(b, rel).equals(bytes(a, rel)), `${JSON.stringify(rel)}: bytes`).toBe(true);
  expect(mustStat(b, rel).mode & 0o777, `${JSON.stringify(rel)}: mode`).toBe(mustStat(a, rel).mode & 0o777);
  expect(ns(b, rel), `${JSON.stringify(rel)}: mtime ns`).toBe(ns(a, rel));
}

/** `done`'s stat is the receiving side's stat now (kind, size, mtime, mode, inode). */
function expectDoneIsStat(r: SmallResult, root: string, rel: string): void {
  const got = r.done.get(rel);
  expect(got, `${JSON.stringify(rel)} done`).toBeDefined();
  const st = mustStat(root, rel);
  expect({ ...got, target: got!.target ?? null }).toEqual({ ...st, target: st.target ?? null });
}

describe('small files through the kept-open session', () => {
  const fx = useRemote('ssh', {
    tempPrefix: 'lipsync-small',
    closeSsh: (_server, o) => remoteOps({ kind: 'ssh', host: 'lipsync-test', path: '/' }, o).close(),
    afterCleanup: () => {
      for (const p of PWNED) expect(existsSync(p), `${p} must not exist`).toBe(false);
    },
  });

  /** A fresh local root and server root (each with its `.lipsync` folder), and the options. */
  function pair(): { local: string; dst: string; outside: string; o: SmallOptions } {
    const n = fx.next();
    const local = join(fx.base, `local-${n}`);
    const dst = join(fx.base, `r${n}`, 'remote');
    const outside = join(fx.base, `outside-${n}`);
    for (const d of [local, dst, outside]) mkdirSync(d, { recursive: true });
    mkdirSync(join(local, '.lipsync'));
    mkdirSync(join(dst, '.lipsync'));
    const remote: RemoteSpec = { kind: 'ssh', host: 'lipsync-test', path: dst };
    return { local, dst, outside, o: { localRoot: local, remote, ssh: fx.ssh, caps: CAPS, trashDir: TRASH } };
  }

  /** Push items: `from` the local stat now, `to` the server stat now. */
  const pushItems = (local: string, dst: string, paths: string[]): SmallItem[] =>
    paths.map((p) => ({ path: p, from: mustStat(local, p), to: stat(dst, p) }));
  /** Pull items: `from` the server stat now, `to` the local stat now. */
  const pullItems = (local: string, dst: string, paths: string[]): SmallItem[] =>
    paths.map((p) => ({ path: p, from: mustStat(dst, p), to: stat(local, p) }));

  afterEach(() => {
    delete process.env.LIPSYNC_SMALL_FILES;
  });

  it('push: new and replaced files land byte-exact, with mode and mtime to the ns; the old one is in the trash', async () => {
    const { local, dst, o } = pair();
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    write(local, 'all256.bin', Buffer.concat([every, every.reverse()]), T0 + 1n);
    write(local, 'empty', '', T0 + 2n);
    write(local, 'big64k.bin', randomBytes(SMALL_FILE_MAX), T0 + 3n);
    write(local, 'run.sh', '#!/bin/sh\necho hi\n', T0 + 4n, 0o755);
    write(local, 'secret', 'only me', T0 + 5n, 0o600);
    write(local, 'sub/dir/replaced.txt', 'version 2, longer', T0 + 6n);
    write(local, 'top.txt', 'new top', T0 + 7n, 0o755);
    // The server's versions: one replaced by a file of another size, one by one of the same size.
    mkdirSync(join(dst, 'sub/dir'), { recursive: true });
    write(dst, 'sub/dir/replaced.txt', 'version 1', 1_500_000_000_000_000_001n);
    write(dst, 'top.txt', 'old top', 1_500_000_000_000_000_002n, 0o600);
    const oldIno = mustStat(dst, 'top.txt').ino;
    const paths = ['all256.bin', 'empty', 'big64k.bin', 'run.sh', 'secret', 'sub/dir/replaced.txt', 'top.txt'];
    const items = pushItems(local, dst, paths);
    expect(pickSmall(items).other).toEqual([]);

    const r = await putSmall(o, items);
    expect(r.changed).toEqual([]);
    expect(r.rest).toEqual([]);
    expect(sorted([...r.done.keys()])).toEqual(sorted(paths));
    for (const p of paths) {
      expectSameFile(local, dst, p);
      expectDoneIsStat(r, dst, p);
    }
    expect(mustStat(dst, 'run.sh').mode & 0o777).toBe(0o755);
    expect(mustStat(dst, 'secret').mode & 0o777).toBe(0o600);
    expect(mustStat(dst, 'top.txt').mode & 0o777).toBe(0o755);
    expect(ns(dst, 'all256.bin')).toBe(T0 + 1n);
    // The replaced versions, whole and with their own mtime and inode, in this push's trash.
    expect(bytes(dst, `${TRASH}/sub/dir/replaced.txt`).toString()).toBe('version 1');
    expect(ns(dst, `${TRASH}/sub/dir/replaced.txt`)).toBe(1_500_000_000_000_000_001n);
    expect(bytes(dst, `${TRASH}/top.txt`).toString()).toBe('old top');
    expect(mustStat(dst, `${TRASH}/top.txt`).ino).toBe(oldIno);
    expect(all(join(dst, TRASH))).toEqual(['sub/', 'sub/dir/', 'sub/dir/replaced.txt', 'top.txt']);
    expect(temps(dst, '.put-')).toEqual([]);
    // Reported as transferred.
    const item = (p: string) => r.items.find((i) => i.path === p);
    expect(item('empty')).toEqual({ path: 'empty', itemize: '<f+++++++++', size: 0, deleted: false });
    expect(item('top.txt')).toEqual({ path: 'top.txt', itemize: '<f.st......', size: 7, deleted: false });
    expect(r.items.length).toBe(paths.length);
    const total = paths.reduce((s, p) => s + mustStat(local, p).size, 0);
    expect(r.literalBytes).toBe(total);
    // Nothing else appeared on the server.
    expect(all(dst).filter((p) => !p.startsWith('.lipsync'))).toEqual(sorted([...paths, 'sub/', 'sub/dir/']));
  });

  it('push: a full batch (64 files, 256 KiB) goes in one script', async () => {
    const { local, dst, o } = pair();
    const paths = Array.from({ length: SMALL_BATCH_FILES }, (_, i) => `batch/f${i}`);
    mkdirSync(join(dst, 'batch'));
    paths.forEach((p, i) => write(local, p, randomBytes(SMALL_BATCH_BYTES / SMALL_BATCH_FILES), T0 + BigInt(i)));
    const { small, other } = pickSmall(pushItems(local, dst, paths));
    expect(other).toEqual([]);
    const r = await putSmall(o, small);
    expect(r.rest).toEqual([]);
    expect(r.changed).toEqual([]);
    expect(r.done.size).toBe(SMALL_BATCH_FILES);
    for (const p of paths) expectSameFile(local, dst, p);
    expect(r.literalBytes).toBe(SMALL_BATCH_BYTES);
  });

  it('push P5: with no lock held, the script takes the server lock for itself and lets it go', async () => {
    const { local, dst, o } = pair();
    write(local, 'a.txt', 'sent under the script lock', T0 + 11n);
    const owner = `host=test pid=1 device=p5 pair=p5 client=${RAND}`;
    const r = await putSmall(o, pushItems(local, dst, ['a.txt']), { owner, ttlMs: 60_000 });
    expect(r.locked).toBeUndefined();
    expect([...r.done.keys()]).toEqual(['a.txt']);
    expectSameFile(local, dst, 'a.txt');
    // Let go at the end of the script: no lock left, nothing of it aside.
    expect(existsSync(join(dst, '.lipsync/lock'))).toBe(false);
    expect(readdirSync(join(dst, '.lipsync')).filter((n) => n.startsWith('lock'))).toEqual([]);
  });

  it('push P5: a lock held by another client is left alone and nothing is written', async () => {
    const { local, dst, o } = pair();
    write(dst, 'a.txt', 'the server version', T0 + 20n);
    write(local, 'a.txt', 'this client version', T0 + 21n);
    const items = pushItems(local, dst, ['a.txt']);
    mkdirSync(join(dst, '.lipsync/lock'));
    writeFileSync(join(dst, '.lipsync/lock/owner'), 'host=elsewhere pid=7 device=other pair=x client=y');
    const r = await putSmall(o, items, { owner: `host=test pid=1 device=p5 client=${RAND}`, ttlMs: 60_000 });
    expect(r.locked).toBe(true);
    expect(r.done.size).toBe(0);
    expect(r.rest).toEqual(['a.txt']);
    expect(bytes(dst, 'a.txt').toString()).toBe('the server version');
    expect(readFileSync(join(dst, '.lipsync/lock/owner'), 'utf8')).toBe(
      'host=elsewhere pid=7 device=other pair=x client=y',
    );
    expect(existsSync(join(dst, TRASH))).toBe(false);
    expect(temps(dst, '.put-')).toEqual([]);
  });

  it('peek P6: the same states as statRemote, and bytes only of small files that changed since their base', async () => {
    const { dst, outside, o } = pair();
    write(dst, 'same.txt', 'unchanged since the base', T0 + 31n);
    write(dst, 'changed.txt', 'changed since the base', T0 + 32n, 0o755);
    write(dst, 'new.bin', randomBytes(1000), T0 + 33n);
    write(dst, 'big.bin', randomBytes(SMALL_FILE_MAX + 1), T0 + 34n);
    write(dst, 'd/inner.txt', 'below a folder', T0 + 35n);
    symlinkSync('d/inner.txt', join(dst, 'link'));
    const paths = ['same.txt', 'changed.txt', 'new.bin', 'big.bin', 'd', 'd/inner.txt', 'link', 'gone', 'nodir/x'];
    const baseOf = (p: string): string => {
      if (p === 'same.txt') return stateWord(mustStat(dst, p));
      if (p === 'changed.txt') return stateWord({ kind: 'file', size: 3, mtimeNs: T0 });
      return '-';
    };
    const peek = await peekSmall(o, paths, paths.map(baseOf));
    expect(peek).not.toBeNull();
    const want = await statRemote(o.remote, fx.ssh, dst, paths, CAPS);
    expect(peek!.stats).toEqual(want);
    expect(sorted([...peek!.data.keys()])).toEqual(['changed.txt', 'd/inner.txt', 'new.bin']);
    for (const p of peek!.data.keys()) expect(peek!.data.get(p)!.equals(bytes(dst, p))).toBe(true);
    // A folder above a path that is a symlink: the peek gives way to statRemote (N5's folders above).
    symlinkSync(outside, join(dst, 'out'));
    writeFileSync(join(outside, 'x'), 'outside');
    expect(await peekSmall(o, ['same.txt', 'out/x'], ['-', '-'])).toBeNull();
  });

  it("push N5: the server's trash (or a day in it) swapped for a symlink: nothing is written through it", async () => {
    for (const planted of ['.lipsync/trash', '.lipsync/trash/2026-01-02']) {
      const { local, dst, outside, o } = pair();
      write(dst, 'a.txt', 'the server version', T0 + 40n);
      write(local, 'a.txt', 'this client version', T0 + 41n);
      mkdirSync(dirname(join(dst, planted)), { recursive: true });
      symlinkSync(outside, join(dst, planted));
      const r = await putSmall(o, pushItems(local, dst, ['a.txt']));
      expect(r.done.size, planted).toBe(0);
      expect(r.rest, planted).toEqual(['a.txt']);
      expect(bytes(dst, 'a.txt').toString()).toBe('the server version');
      expect(all(outside), planted).toEqual([]);
      expect(temps(dst, '.put-')).toEqual([]);
    }
  });

  it('push compare-and-swap: a server file that changed since the decision is not replaced', async () => {
    const { local, dst, o } = pair();
    const { outside } = pair();
    for (const p of ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt', 'g.txt', 'ok.txt'])
      write(local, p, `local ${p}`, T0 + 10n, 0o755);
    write(dst, 'f.txt', 'server F', T0);
    write(outside, 'same', 'server F', T0);
    write(dst, 'a.txt', 'server A', T0);
    write(dst, 'b.txt', 'server B', T0);
    write(dst, 'c.txt', 'server C', T0);
    write(dst, 'e.txt', 'server E', T0);
    write(dst, 'ok.txt', 'server ok', T0);
    const items = pushItems(local, dst, ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt', 'g.txt', 'ok.txt']);
    // After the decision: a rewritten (same size, mtime one nanosecond later); b rewritten
    // with another size and the same mtime; c deleted; d created; e replaced by a folder.
    writeFileSync(join(dst, 'a.txt'), 'SERVER a');
    touchNs(join(dst, 'a.txt'), T0 + 1n);
    writeFileSync(join(dst, 'b.txt'), 'server B!');
    touchNs(join(dst, 'b.txt'), T0);
    rmSync(join(dst, 'c.txt'));
    write(dst, 'd.txt', 'server D, new', T0);
    rmSync(join(dst, 'e.txt'));
    mkdirSync(join(dst, 'e.txt'));
    // f: swapped for a symlink to a file of the same size and mtime; g: a symlink appeared.
    rmSync(join(dst, 'f.txt'));
    symlinkSync(join(outside, 'same'), join(dst, 'f.txt'));
    touchNs(join(dst, 'f.txt'), T0);
    symlinkSync(join(outside, 'same'), join(dst, 'g.txt'));

    const r = await putSmall(o, items);
    expect(sorted(r.changed)).toEqual(['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt', 'g.txt']);
    expect(readdirSync(outside)).toEqual(['same']);
    expect(bytes(outside, 'same').toString()).toBe('server F');
    expect(ns(outside, 'same')).toBe(T0);
    expect(lstatSync(join(dst, 'f.txt')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(dst, 'g.txt')).isSymbolicLink()).toBe(true);
    expect(r.rest).toEqual([]);
    expect([...r.done.keys()]).toEqual(['ok.txt']);
    expect(bytes(dst, 'a.txt').toString()).toBe('SERVER a');
    expect(ns(dst, 'a.txt')).toBe(T0 + 1n);
    expect(bytes(dst, 'b.txt').toString()).toBe('server B!');
    expect(existsSync(join(dst, 'c.txt'))).toBe(false);
    expect(bytes(dst, 'd.txt').toString()).toBe('server D, new');
    expect(mustStat(dst, 'e.txt').kind).toBe('dir');
    expect(all(join(dst, 'e.txt'))).toEqual([]);
    // Only ok.txt's old version is in the trash.
    expect(all(join(dst, TRASH))).toEqual(['ok.txt']);
    expect(temps(dst, '.put-')).toEqual([]);
    expect(r.items.map((i) => i.path)).toEqual(['ok.txt']);
  });

  it('push: a local file that changed after the decision is not sent', async () => {
    const { local, dst, outside, o } = pair();
    write(local, 'size.txt', 'decided', T0);
    write(local, 'mtime.txt', 'decided', T0);
    write(local, 'gone.txt', 'decided', T0);
    write(local, 'link.txt', 'decided', T0);
    write(local, 'under/f.txt', 'decided', T0);
    write(dst, 'mtime.txt', 'server', T0 - 5n);
    write(outside, 'f.txt', 'decided', T0);
    write(local, 'ok.txt', 'sent', T0);
    // ok.txt, last, is the only one sent: its answer must not be taken for another path's.
    const items = pushItems(local, dst, ['size.txt', 'mtime.txt', 'gone.txt', 'link.txt', 'under/f.txt', 'ok.txt']);
    writeFileSync(join(local, 'size.txt'), 'decided and then more'); // other size
    touchNs(join(local, 'size.txt'), T0);
    writeFileSync(join(local, 'mtime.txt'), 'DECIDED'); // same size, one ns later
    touchNs(join(local, 'mtime.txt'), T0 + 1n);
    rmSync(join(local, 'gone.txt'));
    // A symlink to a file of the very same size and mtime; a folder above swapped for one (N5).
    rmSync(join(local, 'link.txt'));
    symlinkSync(join(outside, 'f.txt'), join(local, 'link.txt'));
    rmSync(join(local, 'under'), { recursive: true });
    symlinkSync(outside, join(local, 'under'));

    const r = await putSmall(o, items);
    expect(sorted(r.changed)).toEqual(['gone.txt', 'link.txt', 'mtime.txt', 'size.txt', 'under/f.txt']);
    expect(r.rest).toEqual([]);
    expect([...r.done.keys()]).toEqual(['ok.txt']);
    expect(r.items.map((i) => i.path)).toEqual(['ok.txt']);
    expect(r.literalBytes).toBe(4);
    expect(all(dst)).toEqual(['.lipsync/', 'mtime.txt', 'ok.txt']);
    expectSameFile(local, dst, 'ok.txt');
    expect(temps(dst, '.put-')).toEqual([]);
    expect(bytes(dst, 'mtime.txt').toString()).toBe('server');
    expect(ns(dst, 'mtime.txt')).toBe(T0 - 5n);
  });

  it('push N5: a folder above the path on the server that is a symlink, a file or missing leaves it to rsync', async () => {
    const { local, dst, outside, o } = pair();
    const paths = ['linked/f.txt', 'a/linked/f.txt', 'a/b/linked/deep/f.txt', 'nodir/f.txt', 'file/f.txt', 'ok/f.txt'];
    for (const p of paths) write(local, p, `local ${p}`, T0);
    symlinkSync(outside, join(dst, 'linked'));
    mkdirSync(join(dst, 'a/b'), { recursive: true });
    symlinkSync(outside, join(dst, 'a/linked'));
    symlinkSync('../../outside-x', join(dst, 'a/b/linked'));
    mkdirSync(join(outside, 'deep'));
    writeFileSync(join(dst, 'file'), 'a file');
    mkdirSync(join(dst, 'ok'));
    // The decision saw the server absent everywhere (or, for a/linked, the same file as outside has).
    write(outside, 'f.txt', 'outside, same as seen', T0);
    const items: SmallItem[] = paths.map((p) => ({ path: p, from: mustStat(local, p), to: null }));
    items[1] = { ...items[1]!, to: mustStat(outside, 'f.txt') };
    const outsideBefore = all(outside);

    const r = await putSmall(o, items);
    expect(sorted(r.rest)).toEqual(sorted(paths.filter((p) => p !== 'ok/f.txt')));
    expect(r.changed).toEqual([]);
    expect([...r.done.keys()]).toEqual(['ok/f.txt']);
    // Nothing written through the links, nothing created for the missing folder.
    expect(all(outside)).toEqual(outsideBefore);
    expect(bytes(outside, 'f.txt').toString()).toBe('outside, same as seen');
    expect(existsSync(join(dst, 'nodir'))).toBe(false);
    expect(bytes(dst, 'file').toString()).toBe('a file');
    expect(existsSync(join(dst, TRASH))).toBe(false);
    expect(temps(dst, '.put-')).toEqual([]);
  });

  it('names: quotes, $(...), newlines, leading dashes and unicode land as named; nothing runs', async () => {
    const { local, dst, o } = pair();
    const names = [...strangeNames(PWNED), '-n', '-', 'a b/$(touch x)/`id`/-x', 'LIPSYNC_EOF', 'x\nLIPSYNC_EOF\ny'];
    const content = (n: string) => `content of ${JSON.stringify(n)}\n`;
    names.forEach((n, i) => write(local, n, content(n), T0 + BigInt(i)));
    // The server has the folders above each name; half the names already hold a file.
    names.forEach((n, i) => {
      mkdirSync(dirname(join(dst, n)), { recursive: true });
      if (i % 2) write(dst, n, `old ${i}`, T0 - BigInt(i));
    });
    const r = await putSmall(o, pushItems(local, dst, names));
    expect(r.changed).toEqual([]);
    expect(r.rest).toEqual([]);
    expect(sorted([...r.done.keys()])).toEqual(sorted(names));
    for (const n of names) {
      expect(bytes(dst, n).toString(), JSON.stringify(n)).toBe(content(n));
      expectSameFile(local, dst, n);
    }
    names.forEach((n, i) => {
      if (i % 2) expect(bytes(dst, `${TRASH}/${n}`).toString(), JSON.stringify(n)).toBe(`old ${i}`);
      else expect(existsSync(join(dst, TRASH, n)), JSON.stringify(n)).toBe(false);
    });
    expect(readdirSync(dst, { encoding: 'buffer' }).map((b) => b.toString('hex'))).toEqual(
      expect.arrayContaining([Buffer.from('caf\u00e9').toString('hex'), Buffer.from('cafe\u0301').toString('hex')]),
    );

    // And back: each fetched into a fresh local root by its exact name.
    const back = join(fx.base, `back-${fx.next()}`);
    for (const n of names) mkdirSync(dirname(join(back, n)), { recursive: true });
    const f = await fetchSmall(
      { ...o, localRoot: back },
      names.map((n) => ({ path: n, from: mustStat(dst, n), to: null })),
    );
    expect(f.changed).toEqual([]);
    expect(f.rest).toEqual([]);
    for (const n of names) expectSameFile(dst, back, n);
    for (const p of PWNED) expect(existsSync(p), `${p} must not exist`).toBe(false);
    expect(existsSync(join(dst, 'x'))).toBe(false);
    expect(existsSync(join(back, 'x'))).toBe(false);
  });

  it('fetch: new and replaced files land byte-exact, with mode and mtime to the ns; the old one is in the local trash', async () => {
    const { local, dst, o } = pair();
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    write(dst, 'all256.bin', every, T0 + 1n);
    write(dst, 'empty', '', T0 + 2n, 0o640);
    write(dst, 'big64k.bin', randomBytes(SMALL_FILE_MAX), T0 + 3n);
    write(dst, 'bin/run', '#!/bin/sh\n', T0 + 4n, 0o755);
    write(dst, 'sub/dir/replaced.txt', 'server version, longer', T0 + 5n);
    write(dst, 'same-size.txt', 'SERVER', T0 + 6n, 0o700);
    mkdirSync(join(local, 'bin'));
    write(local, 'sub/dir/replaced.txt', 'local old', 1_500_000_000_000_000_001n);
    write(local, 'same-size.txt', 'local!', 1_500_000_000_000_000_002n, 0o644);
    const oldIno = mustStat(local, 'same-size.txt').ino;
    const paths = ['all256.bin', 'empty', 'big64k.bin', 'bin/run', 'sub/dir/replaced.txt', 'same-size.txt'];

    const r = await fetchSmall(o, pullItems(local, dst, paths));
    expect(r.changed).toEqual([]);
    expect(r.rest).toEqual([]);
    expect(sorted([...r.done.keys()])).toEqual(sorted(paths));
    for (const p of paths) {
      expectSameFile(dst, local, p);
      expectDoneIsStat(r, local, p);
    }
    expect(mustStat(local, 'bin/run').mode & 0o777).toBe(0o755);
    expect(mustStat(local, 'same-size.txt').mode & 0o777).toBe(0o700);
    expect(ns(local, 'empty')).toBe(T0 + 2n);
    expect(bytes(local, `${TRASH}/sub/dir/replaced.txt`).toString()).toBe('local old');
    expect(ns(local, `${TRASH}/sub/dir/replaced.txt`)).toBe(1_500_000_000_000_000_001n);
    expect(mustStat(local, `${TRASH}/same-size.txt`).ino).toBe(oldIno);
    expect(all(join(local, TRASH))).toEqual(['same-size.txt', 'sub/', 'sub/dir/', 'sub/dir/replaced.txt']);
    expect(temps(local, '.fetch-')).toEqual([]);
    const item = (p: string) => r.items.find((i) => i.path === p);
    expect(item('bin/run')).toEqual({ path: 'bin/run', itemize: '>f+++++++++', size: 10, deleted: false });
    expect(item('same-size.txt')).toEqual({ path: 'same-size.txt', itemize: '>f.st......', size: 6, deleted: false });
    expect(r.literalBytes).toBe(paths.reduce((s, p) => s + mustStat(dst, p).size, 0));
    // The server is untouched.
    expect(all(dst)).toEqual(sorted(['.lipsync/', ...paths, 'bin/', 'sub/', 'sub/dir/']));
  });

  it('fetch: a side changed since the decision, or a folder above on the server a symlink, is not placed', async () => {
    const { local, dst, outside, o } = pair();
    // Server side changes after the decision.
    write(dst, 'srv-mtime.txt', 'server', T0);
    write(dst, 'srv-size.txt', 'server', T0);
    write(dst, 'srv-gone.txt', 'server', T0);
    write(dst, 'srv-link.txt', 'server', T0);
    write(dst, 'srv-dir/f.txt', 'server', T0);
    // Local side changes after the decision.
    write(dst, 'loc-new.txt', 'server', T0);
    write(dst, 'loc-mod.txt', 'server', T0);
    write(dst, 'loc-gone.txt', 'server', T0);
    write(local, 'loc-mod.txt', 'local', T0 - 1n);
    write(local, 'loc-gone.txt', 'local', T0 - 1n);
    // N5 on the server, as the decision saw it: a folder above is a symlink out of the root.
    write(outside, 'f.txt', 'outside', T0);
    symlinkSync(outside, join(dst, 'linked'));
    write(dst, 'ok.txt', 'fine', T0);
    const paths = [
      'srv-mtime.txt',
      'srv-size.txt',
      'srv-gone.txt',
      'srv-link.txt',
      'srv-dir/f.txt',
      'loc-new.txt',
      'loc-mod.txt',
      'loc-gone.txt',
      'linked/f.txt',
      'ok.txt',
    ];
    mkdirSync(join(local, 'srv-dir'));
    const items = pullItems(local, dst, paths);
    // The server after the decision.
    writeFileSync(join(dst, 'srv-mtime.txt'), 'SERVER');
    touchNs(join(dst, 'srv-mtime.txt'), T0 + 1n);
    writeFileSync(join(dst, 'srv-size.txt'), 'server, longer');
    touchNs(join(dst, 'srv-size.txt'), T0);
    rmSync(join(dst, 'srv-gone.txt'));
    rmSync(join(dst, 'srv-link.txt'));
    symlinkSync(join(outside, 'f.txt'), join(dst, 'srv-link.txt'));
    rmSync(join(dst, 'srv-dir'), { recursive: true });
    symlinkSync(outside, join(dst, 'srv-dir'));
    // Here after the decision.
    write(local, 'loc-new.txt', 'local new', T0 + 7n);
    writeFileSync(join(local, 'loc-mod.txt'), 'LOCAL'); // same size, one ns later
    touchNs(join(local, 'loc-mod.txt'), T0);
    rmSync(join(local, 'loc-gone.txt'));
    const localBefore = all(local);

    const r = await fetchSmall(o, items);
    expect(sorted(r.rest)).toEqual([
      'linked/f.txt',
      'srv-dir/f.txt',
      'srv-gone.txt',
      'srv-link.txt',
      'srv-mtime.txt',
      'srv-size.txt',
    ]);
    expect(sorted(r.changed)).toEqual(['loc-gone.txt', 'loc-mod.txt', 'loc-new.txt']);
    expect([...r.done.keys()]).toEqual(['ok.txt']);
    expect(bytes(local, 'ok.txt').toString()).toBe('fine');
    // Here, only ok.txt is new; the local edits stand; nothing in the trash.
    expect(all(local)).toEqual(sorted([...localBefore, 'ok.txt']));
    expect(bytes(local, 'loc-new.txt').toString()).toBe('local new');
    expect(bytes(local, 'loc-mod.txt').toString()).toBe('LOCAL');
    expect(existsSync(join(local, TRASH))).toBe(false);
    expect(temps(local, '.fetch-')).toEqual([]);
    expect(r.items.map((i) => i.path)).toEqual(['ok.txt']);
  });

  it('fetch: a folder above the path here that is a symlink is never written through', async () => {
    const { local, dst, outside, o } = pair();
    write(dst, 'd/f.txt', 'server', T0);
    write(dst, 'e/f.txt', 'server', T0);
    mkdirSync(join(local, 'e'));
    const items = pullItems(local, dst, ['d/f.txt', 'e/f.txt']);
    symlinkSync(outside, join(local, 'd'));
    rmSync(join(local, 'e'), { recursive: true });
    symlinkSync(outside, join(local, 'e'));
    const r = await fetchSmall(o, items);
    expect(r.done.size).toBe(0);
    expect(sorted([...r.changed, ...r.rest])).toEqual(['d/f.txt', 'e/f.txt']);
    expect(all(outside)).toEqual([]);
    expect(temps(local, '.fetch-')).toEqual([]);
  });

  it('fetch: below a folder missing here, the path goes to rsync (which makes the folder), not looked at again', async () => {
    // A folder deleted here while a file in it was edited on the server (R14, D2): the
    // decision pulls the file again; were it "changed", every cycle would decide the same.
    const { local, dst, o } = pair();
    write(dst, 'new/dir/f.txt', 'server', T0);
    write(dst, 'g.txt', 'server g', T0);
    write(dst, 'gone/x.txt', 'server x', T0);
    write(local, 'gone/x.txt', 'local', T0);
    // Decided with a local file below a folder that is deleted meanwhile: that one changed.
    const items = pullItems(local, dst, ['new/dir/f.txt', 'g.txt', 'gone/x.txt']);
    rmSync(join(local, 'gone'), { recursive: true });
    const r = await fetchSmall(o, items);
    expect(r.rest).toEqual(['new/dir/f.txt']);
    expect(r.changed).toEqual(['gone/x.txt']);
    expect([...r.done.keys()]).toEqual(['g.txt']);
    expect(all(local)).toEqual(['.lipsync/', 'g.txt']);
  });

  it('end to end: a folder deleted here while a file in it was edited elsewhere comes back in one sync (R14, D2)', async () => {
    requireBuild();
    const remote = makeServerDir();
    const a = await makeClient(fx.server!, remote, 'a');
    const b = await makeClient(fx.server!, remote, 'b');
    try {
      write(a.local, 'd/f.txt', 'v1', T0);
      await syncOk(a);
      await syncOk(b);
      rmSync(join(a.local, 'd'), { recursive: true });
      writeFileSync(join(b.local, 'd/f.txt'), 'v2 from B');
      await syncOk(b);
      const r = await syncOk(a);
      expect(existsSync(join(a.local, 'd/f.txt')), r.stdout + r.stderr).toBe(true);
      expect(bytes(a.local, 'd/f.txt').toString()).toBe('v2 from B');
      expect(bytes(remote, 'd/f.txt').toString()).toBe('v2 from B');
      expect(r.stdout).toMatch(/1 received/);
    } finally {
      for (const c of [a, b]) await stop(c);
      for (const d of [remote, a.e.dir, b.e.dir]) rmSync(d, { recursive: true, force: true });
    }
  });

  it("fetch: this side's .lipsync a symlink out of the root: nothing is lost, nothing is left outside", async () => {
    const { local, dst, outside, o } = pair();
    write(dst, 'f.txt', 'server', T0);
    write(dst, 'new.txt', 'server new', T0);
    write(local, 'f.txt', 'local', T0 - 1n);
    const items = pullItems(local, dst, ['f.txt', 'new.txt']);
    rmSync(join(local, '.lipsync'), { recursive: true });
    symlinkSync(outside, join(local, '.lipsync'));
    const r = await fetchSmall(o, items);
    expect(r.done.size).toBe(0);
    expect(sorted([...r.changed, ...r.rest])).toEqual(['f.txt', 'new.txt']);
    expect(bytes(local, 'f.txt').toString()).toBe('local');
    expect(existsSync(join(local, 'new.txt'))).toBe(false);
    expect(all(outside)).toEqual([]);
  });

  it('fetch: a local root that is gone (an unmounted disk) is never made again (S1)', async () => {
    const { local, dst, o } = pair();
    write(dst, 'f.txt', 'server', T0);
    const items = pullItems(local, dst, ['f.txt']);
    rmSync(local, { recursive: true });
    const r = await fetchSmall(o, items);
    expect(r.done.size).toBe(0);
    expect(r.rest).toEqual(['f.txt']);
    expect(existsSync(local)).toBe(false);
  });

  it('a server root whose name would run commands: push and fetch work, nothing runs', async () => {
    const { local, o } = pair();
    const dst = join(fx.base, `r-${fx.next()}`, strangeRootName(PWNED));
    mkdirSync(join(dst, '.lipsync'), { recursive: true });
    o.remote = { kind: 'ssh', host: 'lipsync-test', path: dst };
    write(local, 'up.txt', 'up', T0);
    write(dst, 'up.txt', 'old up', T0 - 1n);
    write(dst, 'down.txt', 'down', T0 + 1n, 0o755);
    const p = await putSmall(o, pushItems(local, dst, ['up.txt']));
    expect([...p.done.keys()]).toEqual(['up.txt']);
    expectSameFile(local, dst, 'up.txt');
    expect(bytes(dst, `${TRASH}/up.txt`).toString()).toBe('old up');
    const f = await fetchSmall(o, pullItems(local, dst, ['down.txt']));
    expect([...f.done.keys()]).toEqual(['down.txt']);
    expectSameFile(dst, local, 'down.txt');
    for (const x of PWNED) expect(existsSync(x), `${x} must not exist`).toBe(false);
  });

  it('more small files than the link makes worthwhile go by rsync whole; the limit grows with the round trip', async () => {
    const f = (i: number): SmallItem => ({
      path: `f${i}`,
      from: { kind: 'file', size: 10, mtimeNs: T0, mode: 0o644, ino: 1n, target: null },
      to: null,
    });
    const five = [0, 1, 2, 3, 4].map(f);
    expect(pickSmall(five, 5).small).toHaveLength(5);
    expect(pickSmall([...five, f(5)], 5)).toEqual({ small: [], other: [...five, f(5)] });
    // Before the session measured the link: the loopback figure; after a script over the
    // harness's loopback sshd, still a handful, never the whole batch limit.
    const { o } = pair();
    const before = smallLimit(o);
    expect(before).toBeGreaterThanOrEqual(1);
    await peekSmall(o, ['x'], ['-']);
    const after = smallLimit(o);
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThan(SMALL_BATCH_FILES);
  });

  it('LIPSYNC_SMALL_FILES=0 turns the path off; pickSmall keeps to its limits', () => {
    const remote: RemoteSpec = { kind: 'ssh', host: 'h', path: '/r' };
    expect(smallFilesUsable({ remote, caps: CAPS })).toBe(true);
    process.env.LIPSYNC_SMALL_FILES = '0';
    expect(smallFilesUsable({ remote, caps: CAPS })).toBe(false);
    process.env.LIPSYNC_SMALL_FILES = '1';
    expect(smallFilesUsable({ remote, caps: CAPS })).toBe(true);
    delete process.env.LIPSYNC_SMALL_FILES;
    expect(smallFilesUsable({ remote: { kind: 'local', path: '/r' }, caps: CAPS })).toBe(false);
    expect(smallFilesUsable({ remote, caps: { inotifywait: true, gnuFind: false } })).toBe(false);
    expect(smallFilesUsable({ remote, caps: CAPS, bwLimitKBps: 100 })).toBe(false);
    expect(smallFilesUsable({ remote, caps: CAPS, bwLimitKBps: 0 })).toBe(true);

    const file = (size: number, mtimeNs = T0): LocalStat => ({
      kind: 'file',
      size,
      mtimeNs,
      mode: 0o644,
      ino: 1n,
      target: null,
    });
    const dir: LocalStat = { kind: 'dir', size: 0, mtimeNs: T0, mode: 0o755, ino: 2n, target: null };
    const link: LocalStat = { kind: 'symlink', size: 1, mtimeNs: T0, mode: 0o777, ino: 3n, target: 'x' };
    const one = (it: SmallItem) => pickSmall([it]);
    expect(one({ path: 'max', from: file(SMALL_FILE_MAX), to: null }).small).toHaveLength(1);
    expect(one({ path: 'over', from: file(SMALL_FILE_MAX + 1), to: null }).other).toHaveLength(1);
    expect(one({ path: 'dir', from: dir, to: null }).other).toHaveLength(1);
    expect(one({ path: 'link', from: link, to: null }).other).toHaveLength(1);
    expect(one({ path: 'to-dir', from: file(1), to: dir }).other).toHaveLength(1);
    expect(one({ path: 'to-link', from: file(1), to: link }).other).toHaveLength(1);
    expect(one({ path: 'to-big', from: file(1), to: file(10 * SMALL_FILE_MAX) }).small).toHaveLength(1);
    expect(one({ path: 'pre-1970', from: file(1, -1n), to: null }).other).toHaveLength(1);
    expect(one({ path: 'to-pre-1970', from: file(1), to: file(1, -1n) }).other).toHaveLength(1);

    const many = Array.from({ length: SMALL_BATCH_FILES + 6 }, (_, i) => ({ path: `f${i}`, from: file(1), to: null }));
    const m = pickSmall(many);
    expect(m.small.map((i) => i.path)).toEqual(many.slice(0, SMALL_BATCH_FILES).map((i) => i.path));
    expect(m.other).toHaveLength(6);

    // 256 KiB in all: four files of 64 KiB fit, the fifth does not, a small one after it still does.
    const big = Array.from({ length: 5 }, (_, i) => ({ path: `b${i}`, from: file(SMALL_FILE_MAX), to: null }));
    const b = pickSmall([...big, { path: 'tiny', from: file(0), to: null }, { path: 'one', from: file(1), to: null }]);
    expect(b.small.map((i) => i.path)).toEqual(['b0', 'b1', 'b2', 'b3', 'tiny']);
    expect(b.other.map((i) => i.path)).toEqual(['b4', 'one']);
    expect(b.small.reduce((s, i) => s + i.from.size, 0)).toBeLessThanOrEqual(SMALL_BATCH_BYTES);
  });

  it('a server root whose .lipsync is missing or a symlink, or a root that is gone: everything to rsync', async () => {
    for (const how of ['missing', 'symlink', 'file', 'root gone'] as const) {
      const { local, dst, outside, o } = pair();
      write(local, 'a.txt', 'local a', T0);
      write(local, 'sub/b.txt', 'local b', T0);
      write(dst, 'sub/b.txt', 'server b', T0 - 1n);
      write(dst, 'c.txt', 'server c', T0);
      const push = pushItems(local, dst, ['a.txt', 'sub/b.txt']);
      const pull = pullItems(local, dst, ['c.txt']);
      rmSync(join(dst, '.lipsync'), { recursive: true });
      if (how === 'symlink') symlinkSync(outside, join(dst, '.lipsync'));
      if (how === 'file') writeFileSync(join(dst, '.lipsync'), '');
      const root = dirname(dst);
      if (how === 'root gone') rmSync(dst, { recursive: true });
      const before = all(root);
      const p = await putSmall(o, push);
      expect({ how, rest: sorted(p.rest), changed: p.changed, done: p.done.size }).toEqual({
        how,
        rest: ['a.txt', 'sub/b.txt'],
        changed: [],
        done: 0,
      });
      const f = await fetchSmall(o, pull);
      expect({ how, rest: f.rest, changed: f.changed, done: f.done.size }).toEqual({
        how,
        rest: ['c.txt'],
        changed: [],
        done: 0,
      });
      expect(all(root), how).toEqual(before);
      expect(all(outside), how).toEqual([]);
      expect(existsSync(join(local, 'c.txt'))).toBe(false);
    }
  });

  it('a server that cannot be reached: everything to rsync, nothing written here', async () => {
    const { local, dst, o } = pair();
    o.remote = { kind: 'ssh', host: 'lipsync-test', port: 1, path: dst };
    write(local, 'up.txt', 'up', T0);
    write(dst, 'down.txt', 'down', T0);
    const p = await putSmall(o, pushItems(local, dst, ['up.txt']));
    expect({ rest: p.rest, changed: p.changed, done: p.done.size }).toEqual({ rest: ['up.txt'], changed: [], done: 0 });
    const f = await fetchSmall(o, pullItems(local, dst, ['down.txt']));
    expect({ rest: f.rest, changed: f.changed, done: f.done.size }).toEqual({
      rest: ['down.txt'],
      changed: [],
      done: 0,
    });
    expect(all(local)).toEqual(['.lipsync/', 'up.txt']);
    expect(all(dst)).toEqual(['.lipsync/', 'down.txt']);
  });

  describe.skipIf(!isRoot)('a disk that fills up (root: tmpfs)', () => {
    /** A tmpfs mounted on a fresh folder (umounted after all). */
    function tmpfs(opts: string): string {
      const dir = mkdtempSync(join(tmpdir(), 'lipsync-small-tmpfs-'));
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `${opts},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount -t tmpfs failed: ${r.stderr}`);
      mounts.push(dir);
      return dir;
    }
    /** Fills the disk's blocks with one file; returns its path. */
    function fill(dir: string): string {
      const p = join(dir, 'filler');
      spawnSync('sh', ['-c', `cat /dev/zero > '${p}' 2>/dev/null`]);
      return p;
    }
    /** Takes every free inode but `keep`; returns the files made. */
    function takeInodes(dir: string, keep: number): string[] {
      mkdirSync(join(dir, 'inodes'));
      const made: string[] = [];
      for (;;) {
        const p = join(dir, 'inodes', `i${made.length}`);
        try {
          writeFileSync(p, '');
        } catch {
          break;
        }
        made.push(p);
      }
      for (const p of made.splice(made.length - keep)) rmSync(p);
      return made;
    }

    it('push: a full server disk leaves the path to rsync; the old file stays, no temp is left', async () => {
      const { local, o } = pair();
      const dst = tmpfs('size=1m');
      o.remote = { kind: 'ssh', host: 'lipsync-test', path: dst };
      mkdirSync(join(dst, '.lipsync'));
      mkdirSync(join(dst, 'sub'));
      write(dst, 'sub/f.txt', 'old version', T0);
      write(local, 'sub/f.txt', randomBytes(SMALL_FILE_MAX), T0 + 1n);
      write(local, 'new.txt', randomBytes(1000), T0 + 1n);
      const items = pushItems(local, dst, ['sub/f.txt', 'new.txt']);
      const filler = fill(dst);

      const r = await putSmall(o, items);
      expect(sorted(r.rest)).toEqual(['new.txt', 'sub/f.txt']);
      expect(r.done.size).toBe(0);
      expect(bytes(dst, 'sub/f.txt').toString()).toBe('old version');
      expect(ns(dst, 'sub/f.txt')).toBe(T0);
      expect(existsSync(join(dst, 'new.txt'))).toBe(false);
      expect(temps(dst, '.put-')).toEqual([]);

      // With room again, the same decision goes through.
      rmSync(filler);
      const again = await putSmall(o, items);
      expect(sorted([...again.done.keys()])).toEqual(['new.txt', 'sub/f.txt']);
      expectSameFile(local, dst, 'sub/f.txt');
      expect(bytes(dst, `${TRASH}/sub/f.txt`).toString()).toBe('old version');
      expect(temps(dst, '.put-')).toEqual([]);
    });

    it('push: no inode left for the trash folder: the old file stays at its path, no temp is left', async () => {
      const { local, o } = pair();
      const dst = tmpfs('size=4m,nr_inodes=64');
      o.remote = { kind: 'ssh', host: 'lipsync-test', path: dst };
      mkdirSync(join(dst, '.lipsync'));
      write(dst, 'sub/f.txt', 'old version', T0);
      write(local, 'sub/f.txt', 'new version', T0 + 1n);
      const items = pushItems(local, dst, ['sub/f.txt']);
      // One inode free: the temp file gets it, the trash folders cannot be made.
      const taken = takeInodes(dst, 1);
      expect(statfsSync(dst).ffree).toBe(1);

      const r = await putSmall(o, items);
      expect(r.rest).toEqual(['sub/f.txt']);
      expect(r.done.size).toBe(0);
      expect(bytes(dst, 'sub/f.txt').toString()).toBe('old version');
      expect(temps(dst, '.put-')).toEqual([]);
      for (const p of taken) rmSync(p);
      const again = await putSmall(o, items);
      expect([...again.done.keys()]).toEqual(['sub/f.txt']);
      expect(bytes(dst, `${TRASH}/sub/f.txt`).toString()).toBe('old version');
    });

    it('fetch: a full local disk leaves the path to rsync; the local file stays, no temp is left', async () => {
      const { dst, o } = pair();
      const local = tmpfs('size=1m');
      o.localRoot = local;
      mkdirSync(join(local, '.lipsync'));
      write(local, 'f.txt', 'local old', T0);
      write(dst, 'f.txt', randomBytes(SMALL_FILE_MAX), T0 + 1n);
      write(dst, 'g.txt', randomBytes(SMALL_FILE_MAX), T0 + 1n);
      const items = pullItems(local, dst, ['f.txt', 'g.txt']);
      const filler = fill(local);

      const r = await fetchSmall(o, items);
      expect(sorted(r.rest)).toEqual(['f.txt', 'g.txt']);
      expect(r.done.size).toBe(0);
      expect(bytes(local, 'f.txt').toString()).toBe('local old');
      expect(existsSync(join(local, 'g.txt'))).toBe(false);
      expect(temps(local, '.fetch-')).toEqual([]);
      rmSync(filler);
      const again = await fetchSmall(o, items);
      expect(sorted([...again.done.keys()])).toEqual(['f.txt', 'g.txt']);
      expectSameFile(dst, local, 'f.txt');
      expect(bytes(local, `${TRASH}/f.txt`).toString()).toBe('local old');
    });
  });
});
