import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inotifywaitArgs } from '../../electron/engine/watch/inotifywait.js';
import { InotifyRecordParser, interpretRecord, type InotifyRecord } from '../../electron/engine/watch/records.js';
import { isIgnoredPath } from '../../electron/engine/excludes.js';
import {
  classifyLimitText,
  instanceLimitAdvice,
  instanceLimitFailure,
  nextPowerOfTwo,
  parseProcNumber,
  readInotifyLimits,
  recommendedInstances,
  recommendedWatches,
  watchLimitAdvice,
  watchLimitFailure,
  WatchStartError,
} from '../../electron/engine/watch/limits.js';
import { fallbackNotice, findInotifywait } from '../../electron/engine/watch/watcher.js';

describe('limit advice', () => {
  it('recommends max(current*2, 524288) watches rounded up to a power of two', () => {
    expect(nextPowerOfTwo(1)).toBe(1);
    expect(nextPowerOfTwo(524_288)).toBe(524_288);
    expect(nextPowerOfTwo(524_289)).toBe(1_048_576);
    expect(recommendedWatches(8192)).toBe(524_288);
    expect(recommendedWatches(null)).toBe(524_288);
    expect(recommendedWatches(262_144)).toBe(524_288);
    expect(recommendedWatches(300_000)).toBe(1_048_576);
    expect(recommendedWatches(524_288)).toBe(1_048_576);
    expect(recommendedWatches(1_048_576)).toBe(2_097_152);
  });

  it('recommends max(current*2, 512) instances', () => {
    expect(recommendedInstances(128)).toBe(512);
    expect(recommendedInstances(null)).toBe(512);
    expect(recommendedInstances(1024)).toBe(2048);
  });

  it('gives both the immediate and the permanent command', () => {
    const a = watchLimitAdvice(524_288);
    expect(a).toEqual({
      sysctl: 'fs.inotify.max_user_watches',
      current: 524_288,
      recommended: 1_048_576,
      command: 'sudo sysctl fs.inotify.max_user_watches=1048576',
      permanent:
        'echo fs.inotify.max_user_watches=1048576 | sudo tee /etc/sysctl.d/90-lipsync-watches.conf && sudo sysctl --system',
    });
    const i = instanceLimitAdvice(128);
    expect(i.sysctl).toBe('fs.inotify.max_user_instances');
    expect(i.command).toBe('sudo sysctl fs.inotify.max_user_instances=512');
    expect(i.permanent).toBe(
      'echo fs.inotify.max_user_instances=512 | sudo tee /etc/sysctl.d/90-lipsync-instances.conf && sudo sysctl --system',
    );
  });

  it('words the failures for people', () => {
    const w = watchLimitFailure(8192, 'Failed to watch x; upper limit on inotify watches reached!');
    expect(w.kind).toBe('watch-limit');
    expect(w.message).toBe(
      "Can't watch all folders: the inotify watch limit (fs.inotify.max_user_watches = 8192) is reached.",
    );
    expect(w.fix).toContain('sudo sysctl fs.inotify.max_user_watches=524288');
    expect(w.fix).toContain('/etc/sysctl.d/');
    expect(w.detail).toContain('upper limit');
    expect(w.limit?.recommended).toBe(524_288);
    expect(watchLimitFailure(null).message).toContain('(fs.inotify.max_user_watches)');
    expect(watchLimitFailure(null).detail).toBeUndefined();

    const n = instanceLimitFailure(128);
    expect(n.kind).toBe('instance-limit');
    expect(n.message).toContain('fs.inotify.max_user_instances = 128');
    expect(n.fix).toContain('fs.inotify.max_user_instances=512');

    const e = new WatchStartError(w);
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe(w.message);
    expect(e.failure).toBe(w);
  });

  it('recognises limit errors of inotifywait and @parcel/watcher', () => {
    expect(
      classifyLimitText(
        "Setting up watches.\nFailed to watch /a; upper limit on inotify watches reached!\nPlease increase the amount of inotify watches allowed per user via `/proc/sys/fs/inotify/max_user_watches'.",
      ),
    ).toBe('watch-limit');
    expect(classifyLimitText("Couldn't watch new directory /a/b/: No space left on device")).toBe('watch-limit');
    expect(classifyLimitText("inotify_add_watch on '/a/b' failed: No space left on device")).toBe('watch-limit');
    expect(
      classifyLimitText(
        "Couldn't initialize inotify: Too many open files\nTry increasing the value of /proc/sys/fs/inotify/max_user_instances",
      ),
    ).toBe('instance-limit');
    expect(classifyLimitText('Unable to initialize inotify: Too many open files')).toBe('instance-limit');
    expect(classifyLimitText("Couldn't watch /nope: No such file or directory")).toBeNull();
    expect(classifyLimitText('No space left on device')).toBeNull();
  });

  it('reads /proc values', () => {
    expect(parseProcNumber('8192\n')).toBe(8192);
    expect(parseProcNumber('')).toBeNull();
    expect(parseProcNumber('x')).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-proc-'));
    try {
      writeFileSync(join(dir, 'max_user_watches'), '65536\n');
      expect(readInotifyLimits(dir)).toEqual({ maxUserWatches: 65536, maxUserInstances: null });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (process.platform === 'linux') {
      expect(readInotifyLimits().maxUserWatches).toBeGreaterThan(0);
    }
  });
});

/** Encodes records the way inotifywait prints them with INOTIFY_FORMAT. */
function encode(records: [string, string][]): Buffer {
  return Buffer.concat(
    records.map(([e, p]) => Buffer.concat([Buffer.from(e), Buffer.from([0]), Buffer.from(p), Buffer.from([0])])),
  );
}

describe('inotifywait record parser', () => {
  const strange = [
    'a\nb',
    't\tab',
    'back\\slash',
    '$(touch /tmp/pwned)',
    `quo"te's`,
    '-leading-dash',
    'é'.repeat(100), // 200 bytes of UTF-8
    ' spaces ',
  ];
  const records: [string, string][] = [
    ['CREATE', '/r/x'],
    ['CLOSE_WRITE,CLOSE', '/r/x'],
    ['CREATE,ISDIR', '/r/dir'],
    ['Q_OVERFLOW', ''],
    ...strange.map((n): [string, string] => ['MOVED_TO', `/r/dir/${n}`]),
    ['DELETE_SELF', '/r/'],
  ];
  const expected: InotifyRecord[] = records.map(([e, p]) => ({ events: e.split(','), path: p }));
  const stream = encode(records);

  it('parses a whole buffer', () => {
    const p = new InotifyRecordParser();
    expect(p.push(stream)).toEqual(expected);
    expect(p.pendingBytes()).toBe(0);
  });

  it('parses any split into two chunks (inside fields, records and UTF-8 sequences)', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new InotifyRecordParser();
      const got = [...p.push(stream.subarray(0, cut)), ...p.push(stream.subarray(cut))];
      expect(got, `cut at ${cut}`).toEqual(expected);
    }
  });

  it('parses byte-by-byte chunks', () => {
    const p = new InotifyRecordParser();
    const got: InotifyRecord[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...p.push(stream.subarray(i, i + 1)));
    expect(got).toEqual(expected);
  });

  it('holds an incomplete record until it is complete', () => {
    const p = new InotifyRecordParser();
    expect(p.push(Buffer.from('CREATE\0/r/ab'))).toEqual([]);
    expect(p.pendingBytes()).toBeGreaterThan(0);
    expect(p.push(Buffer.from('c\0DELETE'))).toEqual([{ events: ['CREATE'], path: '/r/abc' }]);
    expect(p.push(Buffer.from('\0/r/d\0'))).toEqual([{ events: ['DELETE'], path: '/r/d' }]);
    expect(p.pendingBytes()).toBe(0);
  });
});

describe('inotifywait record meaning', () => {
  const root = '/home/u/sync';
  const rec = (e: string, p: string): InotifyRecord => ({ events: e.split(','), path: p });

  it('maps events to kinds and relative paths', () => {
    expect(interpretRecord(rec('CREATE', `${root}/a`), root)).toEqual({
      type: 'event',
      event: { path: 'a', kind: 'create', isDir: false },
    });
    expect(interpretRecord(rec('CREATE,ISDIR', `${root}/d`), root)).toEqual({
      type: 'event',
      event: { path: 'd', kind: 'create', isDir: true },
    });
    expect(interpretRecord(rec('CLOSE_WRITE,CLOSE', `${root}/d/f`), root)).toMatchObject({
      event: { path: 'd/f', kind: 'modify' },
    });
    expect(interpretRecord(rec('DELETE', `${root}/a`), root)).toMatchObject({ event: { kind: 'delete' } });
    expect(interpretRecord(rec('MOVED_FROM,ISDIR', `${root}/a`), root)).toMatchObject({
      event: { kind: 'move-from', isDir: true },
    });
    expect(interpretRecord(rec('MOVED_TO', `${root}/b`), root)).toMatchObject({ event: { kind: 'move-to' } });
    expect(interpretRecord(rec('ATTRIB,ISDIR', `${root}/`), root)).toEqual({
      type: 'event',
      event: { path: '', kind: 'attrib', isDir: true },
    });
  });

  it('recognises overflow, root gone, and ignores subfolder self events and foreign paths', () => {
    expect(interpretRecord(rec('Q_OVERFLOW', ''), root)).toEqual({ type: 'overflow' });
    expect(interpretRecord(rec('DELETE_SELF', `${root}/`), root)).toEqual({ type: 'root-gone', reason: 'DELETE_SELF' });
    expect(interpretRecord(rec('MOVE_SELF', `${root}/`), root)).toEqual({ type: 'root-gone', reason: 'MOVE_SELF' });
    expect(interpretRecord(rec('UNMOUNT', `${root}/`), root)).toEqual({ type: 'root-gone', reason: 'UNMOUNT' });
    expect(interpretRecord(rec('DELETE_SELF', `${root}/sub/`), root)).toEqual({ type: 'ignore' });
    expect(interpretRecord(rec('MOVE_SELF', `${root}/sub/`), root)).toEqual({ type: 'ignore' });
    expect(interpretRecord(rec('CREATE', `${root}x/a`), root)).toEqual({ type: 'ignore' });
    expect(interpretRecord(rec('OPEN', `${root}/a`), root)).toEqual({ type: 'ignore' });
  });

  it('handles the filesystem root as the watched root', () => {
    expect(interpretRecord(rec('CREATE', '/a'), '/')).toMatchObject({ event: { path: 'a' } });
  });
});

describe('excluded paths', () => {
  const excluder = {
    ignores: (p: string, isDir: boolean) => p === 'node_modules' || p.endsWith('.tmp') || (isDir && p === 'build'),
  };

  it('always drops .lipsync state folders and their contents, at any depth', () => {
    expect(isIgnoredPath('.lipsync', true)).toBe(true);
    expect(isIgnoredPath('.lipsync/state.db', false)).toBe(true);
    expect(isIgnoredPath('a/.lipsync', true)).toBe(true);
    expect(isIgnoredPath('a/.lipsync/b/c', false)).toBe(true);
    expect(isIgnoredPath('.lipsyncx', false)).toBe(false);
    expect(isIgnoredPath('a/x.lipsync', false)).toBe(false);
    expect(isIgnoredPath('a/.lipsync.bak/f', false)).toBe(false);
    expect(isIgnoredPath('', true)).toBe(false);
  });

  it('drops excluded paths and anything inside an excluded folder', () => {
    expect(isIgnoredPath('node_modules', true, excluder)).toBe(true);
    expect(isIgnoredPath('node_modules/a/b.js', false, excluder)).toBe(true);
    expect(isIgnoredPath('x.tmp', false, excluder)).toBe(true);
    expect(isIgnoredPath('build/out.o', false, excluder)).toBe(true);
    expect(isIgnoredPath('build', false, excluder)).toBe(false);
    expect(isIgnoredPath('src/a.ts', false, excluder)).toBe(false);
  });
});

describe('inotifywait command line and lookup', () => {
  it('never uses -q/-qq, subscribes q_overflow, modify (writes while open) and close_write, and excludes the state folder', () => {
    const args = inotifywaitArgs('/r');
    expect(args).not.toContain('-q');
    expect(args).not.toContain('-qq');
    expect(args).toContain('q_overflow');
    expect(args).toContain('modify');
    expect(args).toContain('close_write');
    expect(args.slice(-3)).toEqual(['--', '@/r/.lipsync', '/r']);
    expect(args[args.indexOf('--format') + 1]).toBe('%e%0%w%f%0');
    expect(args).toContain('--no-newline');
  });

  it('finds inotifywait from the option, the environment or PATH', () => {
    expect(findInotifywait('/nonexistent/inotifywait', {})).toBeNull();
    expect(findInotifywait(undefined, { LIPSYNC_INOTIFYWAIT: '/nonexistent/x', PATH: '/usr/bin' })).toBeNull();
    expect(findInotifywait(undefined, { PATH: '/nonexistent' })).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-path-'));
    try {
      const exe = join(dir, 'inotifywait');
      writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
      writeFileSync(join(dir, 'not-exec'), '', { mode: 0o644 });
      expect(findInotifywait(undefined, { PATH: `/nonexistent:${dir}` })).toBe(exe);
      expect(findInotifywait(undefined, { LIPSYNC_INOTIFYWAIT: exe, PATH: '' })).toBe(exe);
      expect(findInotifywait(exe, { LIPSYNC_INOTIFYWAIT: '/nonexistent/x' })).toBe(exe);
      expect(findInotifywait(join(dir, 'not-exec'), {})).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(fallbackNotice()).toContain('inotify-tools');
  });
});
