import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ITEM_MARKER,
  OUT_FORMAT,
  emptyStats,
  parseItemLine,
  parseProgressLine,
  parseStatsLine,
} from '../../electron/engine/remote/progress.js';
import { LineReader } from '../../electron/engine/proc/split.js';
import { parseRsyncVersion, versionAtLeast } from '../../electron/engine/remote/rsync.js';
import { rsyncPushArgs, rsyncTreePushArgs } from '../../electron/engine/remote/rsync-args.js';

describe('parseProgressLine', () => {
  it.each([
    [
      '      1,234,567  45%   12.34MB/s    0:00:01 (xfr#5, to-chk=10/20)',
      {
        bytes: 1234567,
        percent: 45,
        rateBps: Math.round(12.34 * 1024 * 1024),
        eta: '0:00:01',
        filesDone: 5,
        toCheck: 10,
        total: 20,
      },
    ],
    [
      '              0 100%    0.00kB/s    0:00:00 (xfr#11, to-chk=0/11)',
      { bytes: 0, percent: 100, rateBps: 0, filesDone: 11, toCheck: 0, total: 11 },
    ],
    [
      '              4  33%    0.00kB/s    0:00:00  ',
      { bytes: 4, percent: 33, rateBps: 0, eta: '0:00:00', filesDone: null, toCheck: null, total: null },
    ],
    ['     32,768   0%  31.25MB/s    0:00:00', { bytes: 32768, percent: 0, filesDone: null }],
    [
      '  1,073,741,824  99%  110.50MB/s    0:00:09 (xfr#1, ir-chk=1000/2001)',
      { bytes: 1073741824, percent: 99, filesDone: 1, toCheck: 1000, total: 2001 },
    ],
    ['          1.23M  12%    1.17MB/s    0:00:08', { bytes: Math.round(1.23 * 1024 * 1024), percent: 12 }],
    ['    512 100%  500.00B/s    0:00:00 (xfr#1, to-chk=0/1)', { bytes: 512, rateBps: 500 }],
    [
      '  2,000,000,000  50%    1.50GB/s   10:00:00 (xfr#3, to-chk=1/4)',
      { rateBps: Math.round(1.5 * 1024 ** 3), eta: '10:00:00' },
    ],
  ])('%s', (line, expected) => {
    expect(parseProgressLine(line)).toMatchObject(expected);
  });

  it.each([
    '',
    'Number of files: 11 (reg: 11)',
    'sending incremental file list',
    `${ITEM_MARKER}>f+++++++++|3|a`,
    'rsync error: some files/attrs were not transferred (code 23)',
    '45% done',
  ])('ignores %j', (line) => {
    expect(parseProgressLine(line)).toBeNull();
  });
});

describe('parseItemLine', () => {
  it('uses a marker and the name last', () => {
    expect(OUT_FORMAT).toBe(`${ITEM_MARKER}%i|%l|%n`);
  });

  it.each([
    [
      `${ITEM_MARKER}>f+++++++++|1234|a/b/c.txt`,
      { path: 'a/b/c.txt', itemize: '>f+++++++++', size: 1234, deleted: false },
    ],
    [`${ITEM_MARKER}<f.st......|5|x`, { path: 'x', itemize: '<f.st......', size: 5, deleted: false }],
    [
      `${ITEM_MARKER}cd+++++++++|4096|new/dir/`,
      { path: 'new/dir', itemize: 'cd+++++++++', size: 4096, deleted: false },
    ],
    [`${ITEM_MARKER}*deleting  |0|gone/`, { path: 'gone', itemize: '*deleting', size: 0, deleted: true }],
    [`${ITEM_MARKER}cL+++++++++|6|link`, { path: 'link', itemize: 'cL+++++++++', size: 6 }],
    [`${ITEM_MARKER}>f+++++++++|2|we ird\\#012name`, { path: 'we ird\nname' }],
    [`${ITEM_MARKER}>f+++++++++|0|lit\\#134#012x`, { path: 'lit\\#012x' }],
    [`${ITEM_MARKER}>f+++++++++|0|tab\tx`, { path: 'tab\tx' }],
    [`${ITEM_MARKER}>f+++++++++|0|a|b|c`, { path: 'a|b|c' }],
    [`${ITEM_MARKER}>f+++++++++|0|-rf`, { path: '-rf' }],
    [`${ITEM_MARKER}>f+++++++++|0|caf\\#303\\#251`, { path: 'café' }],
    [`${ITEM_MARKER}>f+++++++++|1,234|big`, { size: 1234 }],
  ])('%s', (line, expected) => {
    expect(parseItemLine(line)).toMatchObject(expected);
  });

  it.each([
    '>f+++++++++|1|a',
    `${ITEM_MARKER}garbage`,
    `${ITEM_MARKER}>f+++++++++|1|`,
    '      0 100%    0.00kB/s    0:00:00',
  ])('ignores %j', (line) => {
    expect(parseItemLine(line)).toBeNull();
  });
});

describe('parseStatsLine', () => {
  it('reads the numbers we use', () => {
    const s = emptyStats();
    const text = `Number of files: 7 (reg: 5, dir: 2)
Number of created files: 2 (reg: 2)
Number of deleted files: 3 (reg: 1, dir: 2)
Number of regular files transferred: 3
Total file size: 12 bytes
Total transferred file size: 12 bytes
Literal data: 1,234,567 bytes
Matched data: 0 bytes
Total bytes sent: 285`;
    for (const l of text.split('\n')) parseStatsLine(l, s);
    expect(s).toEqual({
      literalBytes: 1234567,
      matchedBytes: 0,
      filesTransferred: 3,
      deletedFiles: 3,
      totalSentBytes: 285,
    });
    expect(parseStatsLine('something else', s)).toBe(false);
  });
});

describe('LineReader', () => {
  it('splits on \\n and \\r across chunk boundaries, decoding whole lines only', () => {
    const lines: string[] = [];
    const sp = new LineReader((l) => lines.push(l));
    const data = Buffer.from('  1 10%\r  2 20%\rab\u00e9c\n\nlast', 'utf8');
    for (let i = 0; i < data.length; i++) sp.push(data.subarray(i, i + 1));
    sp.end();
    expect(lines).toEqual(['  1 10%', '  2 20%', 'abéc', 'last']);
  });
});

describe('rsync versions', () => {
  it('parses version lines', () => {
    expect(parseRsyncVersion('rsync  version 3.5.0  protocol version 32\nCopyright')).toBe('3.5.0');
    expect(parseRsyncVersion('rsync  version v3.2.7  protocol version 31')).toBe('3.2.7');
    expect(parseRsyncVersion('rsync  version 3.1.2  protocol version 31')).toBe('3.1.2');
    expect(parseRsyncVersion('openrsync: protocol version 29')).toBeNull();
  });

  it.each([
    ['3.1.0', '3.1.0', true],
    ['3.2.7', '3.1.0', true],
    ['3.10.0', '3.9.9', true],
    ['3.0.9', '3.1.0', false],
    ['2.6.9', '3.1.0', false],
    ['3.1', '3.1.0', true],
    ['3.4.1pre1', '3.4.0', true],
  ])('versionAtLeast(%s, %s) = %s', (v, min, ok) => {
    expect(versionAtLeast(v, min)).toBe(ok);
  });
});

describe('rsyncPushArgs', () => {
  let tmp: string;
  let ssh: { controlDir: string };
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lipsync-pushargs-'));
    ssh = { controlDir: join(tmp, 'ctl') };
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('local remote', () => {
    const a = rsyncPushArgs({
      localRoot: '/home/me/p',
      remote: { kind: 'local', path: '/mnt/nas/x' },
      ssh,
      trashDir: '.lipsync/trash/T',
    });
    expect(a).toEqual(
      expect.arrayContaining([
        '-s',
        '-l',
        '-p',
        '-t',
        '--files-from=-',
        '--from0',
        '--no-implied-dirs',
        '--delete-missing-args',
        '--force',
        '--backup',
        '--backup-dir=.lipsync/trash/T',
        '--partial-dir=/mnt/nas/x/.lipsync/partial',
        '--temp-dir=.lipsync',
        '--exclude=/.lipsync/***',
        '--info=progress2',
        '--stats',
      ]),
    );
    for (const bad of ['-a', '-r', '--inplace', '--delete', '--delete-after', '--delete-during', '-e'])
      expect(a).not.toContain(bad);
    expect(a.some((x) => x.startsWith('--iconv'))).toBe(false);
    expect(a.slice(-2)).toEqual(['/home/me/p/', '/mnt/nas/x/']);
  });

  it('ssh remote with user, port, IPv6 and bwlimit', () => {
    const a = rsyncPushArgs({
      localRoot: '/home/me/p/',
      remote: { kind: 'ssh', user: 'me', host: '::1', port: 2222, path: '/' },
      ssh,
      trashDir: '.lipsync/trash/T',
      bwLimitKBps: 500,
    });
    expect(a).toContain('--bwlimit=500');
    expect(a).toContain('--partial-dir=/.lipsync/partial');
    const e = a[a.indexOf('-e') + 1] as string;
    expect(e).toMatch(/^ssh /);
    expect(e).toContain('-p 2222');
    expect(e).toContain('-l me');
    expect(a.slice(-2)).toEqual(['/home/me/p/', '[::1]:/']);
  });

  it('refuses a trash dir outside the root', () => {
    expect(() =>
      rsyncPushArgs({ localRoot: '/a', remote: { kind: 'local', path: '/b' }, ssh, trashDir: '../x' }),
    ).toThrow();
    expect(() =>
      rsyncPushArgs({ localRoot: '/a', remote: { kind: 'local', path: '/b' }, ssh, trashDir: '/abs' }),
    ).toThrow();
  });
});

describe('rsyncTreePushArgs', () => {
  const ssh = { controlDir: '/tmp/lipsync-ctl-unused' };

  it('sends each listed folder whole into the staging folder, replacing and deleting nothing', () => {
    const a = rsyncTreePushArgs({
      localRoot: '/home/me/p',
      remote: { kind: 'local', path: '/mnt/nas/x' },
      ssh,
      stagingDir: '.lipsync/incoming/pabc-123',
      excludes: ['.DS_Store', '*.swp', '/docs/build/'],
    });
    expect(a).toEqual(
      expect.arrayContaining(['-s', '-r', '-l', '-p', '-t', '--files-from=-', '--from0', '--no-implied-dirs']),
    );
    expect(a).toEqual(
      expect.arrayContaining([
        '--exclude=/.lipsync/***',
        '--exclude=.DS_Store',
        '--exclude=*.swp',
        '--exclude=/docs/build/',
      ]),
    );
    for (const bad of ['--delete-missing-args', '--force', '--backup', '--delete', '--inplace', '-a'])
      expect(a).not.toContain(bad);
    expect(a.some((x) => x.startsWith('--temp-dir') || x.startsWith('--partial-dir'))).toBe(false);
    expect(a.slice(-2)).toEqual(['/home/me/p/', '/mnt/nas/x/.lipsync/incoming/pabc-123/']);
  });

  it('over ssh, into the staging folder below the remote root', () => {
    const a = rsyncTreePushArgs({
      localRoot: '/home/me/p/',
      remote: { kind: 'ssh', host: 'srv', path: '/srv/sync' },
      ssh,
      stagingDir: '.lipsync/incoming/p1-2',
      excludes: [],
    });
    expect(a.slice(-2)).toEqual(['/home/me/p/', 'srv:/srv/sync/.lipsync/incoming/p1-2/']);
  });

  it('refuses a staging folder outside .lipsync/', () => {
    for (const stagingDir of ['incoming/x', '../x', '/abs', 'docs/.lipsync'])
      expect(() =>
        rsyncTreePushArgs({ localRoot: '/a', remote: { kind: 'local', path: '/b' }, ssh, stagingDir, excludes: [] }),
      ).toThrow();
  });
});
