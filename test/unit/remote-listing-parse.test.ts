// Pure parsers of remote listings: GNU find -printf records and rsync --list-only lines.

import { describe, expect, it } from 'vitest';
import {
  FindListParser,
  FindStatParser,
  findFieldsToStat,
  parseFindTime,
} from '../../electron/engine/remote/find-parse.js';
import { parseModeString, parseRsyncListLine } from '../../electron/engine/remote/rsync-list-parse.js';
import { STREAM_MARKER, StreamGate } from '../../electron/engine/remote/script.js';
import { globEscape, normalizeRoot, rsyncSourcePath } from '../../electron/engine/remote/paths.js';
import { LineSplitter, NulFieldSplitter } from '../../electron/engine/proc/split.js';
import { pollMarkerPath } from '../../electron/engine/remote/watch-marker.js';

/** One listing record as find prints it: %y %s %T@ %m %i %l %P, each NUL-terminated. */
function rec(y: string, size: string, t: string, mode: string, ino: string, link: string, path: string): Buffer {
  return Buffer.from([y, size, t, mode, ino, link, path].map((f) => `${f}\0`).join(''), 'utf8');
}

/** Feeds `data` to `push` cut at every `step` bytes; returns everything produced. */
function feed<T>(data: Buffer, step: number, push: (b: Buffer) => T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < data.length; i += step) out.push(...push(data.subarray(i, i + step)));
  return out;
}

const LONG_UTF8 = 'é'.repeat(100); // 200 bytes

describe('parseFindTime', () => {
  it('converts %T@ to exact nanoseconds, without floats', () => {
    expect(parseFindTime('1732541412.1234567890')).toBe(1732541412123456789n);
    expect(parseFindTime('1732541412.9999999999')).toBe(1732541412999999999n);
    expect(parseFindTime('1732541412.0000000010')).toBe(1732541412000000001n);
    expect(parseFindTime('1732541412')).toBe(1732541412000000000n);
    expect(parseFindTime('1732541412.5')).toBe(1732541412500000000n);
    expect(parseFindTime('0.0000000000')).toBe(0n);
    expect(parseFindTime('-1.5000000000')).toBe(-1500000000n);
    // A float would lose the last digits here.
    expect(Number(parseFindTime('9999999999.1234567891') % 1000n)).toBe(789);
  });

  it('rejects what is not a time', () => {
    expect(() => parseFindTime('')).toThrow();
    expect(() => parseFindTime('12a')).toThrow();
    expect(() => parseFindTime('1.2.3')).toThrow();
  });
});

describe('find records', () => {
  it('maps the fields of a file, a folder and a symlink', () => {
    expect(findFieldsToStat(['f', '5', '1732541412.1234567890', '644', '1234', ''])).toEqual({
      kind: 'file',
      size: 5,
      mtimeNs: 1732541412123456789n,
      mode: 0o644,
      ino: 1234n,
      target: null,
    });
    expect(findFieldsToStat(['d', '4096', '1.0', '4755', '7', ''])).toMatchObject({ kind: 'dir', mode: 0o4755 });
    expect(findFieldsToStat(['l', '7', '1.0', '777', '8', 'a -> b\n'])).toMatchObject({
      kind: 'symlink',
      target: 'a -> b\n',
    });
    for (const special of ['p', 's', 'c', 'b', 'D'])
      expect(findFieldsToStat([special, '0', '1.0', '644', '9', ''])).toBe(null);
    expect(() => findFieldsToStat(['f', 'x', '1.0', '644', '9', ''])).toThrow();
  });

  const names = [
    'plain',
    'new\nline',
    'tab\there',
    'back\\slash',
    'quote\'"',
    '-leading-dash',
    '$(touch x)',
    LONG_UTF8,
  ];

  it('parses listing records with any name, whatever the chunking', () => {
    const data = Buffer.concat([
      ...names.map((n, i) =>
        rec('f', String(i), `1732541412.${String(i).padStart(9, '0')}0`, '644', String(100 + i), '', n),
      ),
      rec('d', '4096', '1732541412.5000000000', '755', '200', '', `dir/${LONG_UTF8}`),
      rec('l', '6', '1732541412.0000000000', '777', '201', 'target', 'link'),
      rec('p', '0', '1732541412.0000000000', '644', '202', '', 'fifo'),
    ]);
    for (const step of [1, 2, 3, 7, 64, data.length]) {
      const parser = new FindListParser();
      const out = feed(data, step, (b) => parser.push(b));
      expect(parser.incomplete()).toBe(false);
      expect(out.map((e) => e.path)).toEqual([...names, `dir/${LONG_UTF8}`, 'link']);
      expect(out[1]).toEqual({
        path: 'new\nline',
        kind: 'file',
        size: 1,
        mtimeNs: 1732541412000000001n,
        mode: 0o644,
        ino: 101n,
        target: null,
      });
      expect(out[names.length + 1]).toMatchObject({ kind: 'symlink', target: 'target', size: 6 });
    }
  });

  it('makes paths root-relative with the start prefix; the start itself is the prefix', () => {
    const parser = new FindListParser('sub/dir');
    const out = parser.push(
      Buffer.concat([rec('d', '1', '1.0', '755', '1', '', ''), rec('f', '1', '1.0', '644', '2', '', 'a/b')]),
    );
    expect(out.map((e) => e.path)).toEqual(['sub/dir', 'sub/dir/a/b']);
    expect(new FindListParser('').push(rec('d', '1', '1.0', '755', '1', '', ''))[0]?.path).toBe('');
  });

  it('knows a record cut short', () => {
    const parser = new FindListParser();
    parser.push(Buffer.from('f\x005\x00'));
    expect(parser.incomplete()).toBe(true);
  });

  it('parses tagged stat records', () => {
    const fields = ['M', '/r/missing\nname', 'F', '/r/a', 'f', '5', '1.5', '644', '42', '', 'E', '/r/locked/x'];
    fields.push('F', '/r/l', 'l', '1', '2.0', '777', '7', 'a');
    const data = Buffer.from(fields.map((f) => `${f}\0`).join(''));
    for (const step of [1, 5, data.length]) {
      const parser = new FindStatParser();
      expect(feed(data, step, (b) => parser.push(b))).toEqual([
        { tag: 'M', path: '/r/missing\nname' },
        {
          tag: 'F',
          path: '/r/a',
          stat: { kind: 'file', size: 5, mtimeNs: 1500000000n, mode: 0o644, ino: 42n, target: null },
        },
        { tag: 'E', path: '/r/locked/x' },
        {
          tag: 'F',
          path: '/r/l',
          stat: { kind: 'symlink', size: 1, mtimeNs: 2000000000n, mode: 0o777, ino: 7n, target: 'a' },
        },
      ]);
    }
    expect(() => new FindStatParser().push(Buffer.from('X\0'))).toThrow();
  });

  it('splits NUL fields across chunks, even inside a UTF-8 sequence', () => {
    const data = Buffer.from(`${LONG_UTF8}\0b\0`);
    const s = new NulFieldSplitter();
    expect(feed(data, 1, (b) => s.push(b))).toEqual([LONG_UTF8, 'b']);
    expect(s.pendingBytes()).toBe(0);
  });
});

describe('StreamGate', () => {
  it('drops login noise before the marker, even a marker cut in pieces', () => {
    const data = Buffer.from(`Welcome!\nlast login...\0junk${STREAM_MARKER}\0payload\0more`);
    for (const step of [1, 3, 8, data.length]) {
      const gate = new StreamGate();
      const out: Buffer[] = [];
      for (let i = 0; i < data.length; i += step) {
        const b = gate.push(data.subarray(i, i + step));
        if (b) out.push(Buffer.from(b));
      }
      expect(gate.passed).toBe(true);
      expect(Buffer.concat(out).toString()).toBe('payload\0more');
    }
    const closed = new StreamGate();
    expect(closed.push(Buffer.from('no marker here'))).toBe(null);
    expect(closed.passed).toBe(false);
  });
});

describe('parseRsyncListLine', () => {
  const T = 1732541412n * 1_000_000_000n; // 2024/11/25 13:30:12 UTC

  it('parses files with and without thousands separators', () => {
    expect(parseRsyncListLine('-rw-r--r--      1,234,567 2024/11/25 13:30:12 big file')).toEqual({
      name: 'big file',
      stat: { kind: 'file', size: 1234567, mtimeNs: T, mode: 0o644, ino: null, target: null },
    });
    expect(parseRsyncListLine('-rw-r--r--        1234567 2024/11/25 13:30:12 big')?.stat?.size).toBe(1234567);
    expect(parseRsyncListLine('-rwxr-x---              0 2024/11/25 13:30:12 e')?.stat).toMatchObject({
      size: 0,
      mode: 0o750,
    });
  });

  it('parses folders, the listed folder itself, and nested names', () => {
    expect(parseRsyncListLine('drwxr-xr-x          4,096 2024/11/25 13:30:12 .')).toMatchObject({
      name: '.',
      stat: { kind: 'dir', size: 4096, mode: 0o755 },
    });
    expect(parseRsyncListLine('drwxrwsr-t          4,096 2024/11/25 13:30:12 a/b c/d')).toMatchObject({
      name: 'a/b c/d',
      stat: { kind: 'dir', mode: 0o3775 },
    });
  });

  it('unescapes names: control characters, a literal backslash-hash, raw tabs, UTF-8', () => {
    expect(parseRsyncListLine('-rw-r--r--              0 2024/11/25 13:30:12 new\\#012line')?.name).toBe('new\nline');
    expect(parseRsyncListLine('-rw-r--r--              0 2024/11/25 13:30:12 back\\#134#123')?.name).toBe('back\\#123');
    expect(parseRsyncListLine('-rw-r--r--              0 2024/11/25 13:30:12 back\\slash')?.name).toBe('back\\slash');
    expect(parseRsyncListLine('-rw-r--r--              0 2024/11/25 13:30:12 tab\there')?.name).toBe('tab\there');
    expect(parseRsyncListLine(`-rw-r--r--              0 2024/11/25 13:30:12 ${LONG_UTF8}`)?.name).toBe(LONG_UTF8);
    expect(parseRsyncListLine('-rw-r--r--              0 2024/11/25 13:30:12 -leading $(touch x)')?.name).toBe(
      '-leading $(touch x)',
    );
  });

  it('parses symlinks, using the size (the target length) when " -> " is ambiguous', () => {
    expect(parseRsyncListLine('lrwxrwxrwx              1 2024/11/25 13:30:12 lnk -> a')).toEqual({
      name: 'lnk',
      stat: { kind: 'symlink', size: 1, mtimeNs: T, mode: 0o777, ino: null, target: 'a' },
    });
    // Target "some -> target" (14 bytes).
    expect(parseRsyncListLine('lrwxrwxrwx             14 2024/11/25 13:30:12 l2 -> some -> target')).toMatchObject({
      name: 'l2',
      stat: { target: 'some -> target' },
    });
    // Name "a -> b", target "c" (1 byte).
    expect(parseRsyncListLine('lrwxrwxrwx              1 2024/11/25 13:30:12 a -> b -> c')).toMatchObject({
      name: 'a -> b',
      stat: { target: 'c' },
    });
    // Escaped target: its unescaped length counts.
    expect(parseRsyncListLine('lrwxrwxrwx              3 2024/11/25 13:30:12 n -> a\\#012b')).toMatchObject({
      name: 'n',
      stat: { target: 'a\nb' },
    });
    // A known name wins.
    expect(
      parseRsyncListLine('lrwxrwxrwx              1 2024/11/25 13:30:12 x -> y -> z', (n) => n === 'x')?.name,
    ).toBe('x');
  });

  it('gives no stat for sockets, fifos and devices, and null for other lines', () => {
    expect(parseRsyncListLine('prw-r--r--              0 2024/11/25 13:30:12 fifo')).toEqual({
      name: 'fifo',
      stat: null,
    });
    expect(parseRsyncListLine('crw-rw-rw-          1,3 2024/11/25 13:30:12 null')?.stat).toBe(null);
    expect(parseRsyncListLine('')).toBe(null);
    expect(parseRsyncListLine('receiving incremental file list')).toBe(null);
    expect(parseRsyncListLine('rsync: [sender] link_stat "/x" failed: No such file or directory (2)')).toBe(null);
  });

  it('accepts fractional seconds and CRLF', () => {
    expect(parseRsyncListLine('-rw-r--r--              5 2024/11/25 13:30:12.123456789 a\r')).toMatchObject({
      name: 'a',
      stat: { mtimeNs: T },
    });
  });
});

describe('helpers', () => {
  it('parses mode strings with setuid, setgid and sticky bits', () => {
    expect(parseModeString('rw-r--r--')).toBe(0o644);
    expect(parseModeString('rwsr-xr-x')).toBe(0o4755);
    expect(parseModeString('rwSr--r--')).toBe(0o4644);
    expect(parseModeString('rwxr-sr-x')).toBe(0o2755);
    expect(parseModeString('rwxrwxrwt')).toBe(0o1777);
    expect(parseModeString('rwxrwxrwT')).toBe(0o1776);
    expect(parseModeString('---------')).toBe(0);
  });

  it('splits lines across chunks', () => {
    const s = new LineSplitter();
    const data = Buffer.from(`a\n${LONG_UTF8}\nlast`);
    expect(feed(data, 1, (b) => s.push(b))).toEqual(['a', LONG_UTF8]);
    expect(s.end()).toEqual(['last']);
  });

  it('escapes find -path wildcards', () => {
    expect(globEscape('/a/[x]*?\\b/.lipsync')).toBe('/a/\\[x\\]\\*\\?\\\\b/.lipsync');
  });

  it('escapes rsync source paths only when they hold wildcards', () => {
    expect(rsyncSourcePath('/a/b c\\d/')).toBe('/a/b c\\d/');
    expect(rsyncSourcePath('/a/[x]\\d/')).toBe('/a/\\[x\\]\\\\d/');
    expect(rsyncSourcePath('/a/*')).toBe('/a/\\*');
  });

  it('normalises roots and refuses relative ones', () => {
    expect(normalizeRoot('/a/b/')).toBe('/a/b');
    expect(normalizeRoot('/')).toBe('/');
    expect(() => normalizeRoot('a/b')).toThrow();
    expect(() => normalizeRoot('-x')).toThrow();
  });

  it('checks client ids used in marker names', () => {
    expect(pollMarkerPath('abc-1_2')).toBe('.lipsync/poll-marker-abc-1_2');
    for (const bad of ['', '../x', 'a/b', 'a b', 'x'.repeat(65)]) expect(() => pollMarkerPath(bad)).toThrow();
  });
});
