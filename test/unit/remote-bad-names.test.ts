// Names on the server that are not valid UTF-8 (docs/sync-semantics.md N3): found byte-exactly
// in find's and rsync's listings, reported once (not what is below them), escaped readably.
import { describe, expect, it } from 'vitest';
import {
  FIND_LIST_FORMAT,
  FindListParser,
  escapeName,
  ownNameNotUtf8,
} from '../../electron/engine/remote/find-parse.js';
import { rsyncListRawName } from '../../electron/engine/remote/rsync-list-parse.js';
import { notUtf8OnServer } from '../../electron/engine/cycle/collect-remote.js';

const b = (...parts: (string | number[] | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** One find listing record (FIND_LIST_FORMAT's 7 fields) for `rel`. */
const rec = (type: string, rel: Buffer): Buffer =>
  b(`${type}\0${type === 'd' ? 4096 : 3}\x001700000000.5\0${type === 'd' ? '755' : '644'}\x0042\0\0`, rel, [0]);

describe('escapeName', () => {
  it('keeps valid UTF-8 and shows each other byte, and control characters, as \\xNN', () => {
    expect(escapeName(b('caf', [0xe9], '.txt'))).toBe('caf\\xe9.txt');
    expect(escapeName(b('d', [0xff], '/ok é'))).toBe('d\\xff/ok é');
    expect(escapeName(b('a', [0x01, 0x0a, 0x7f], 'z'))).toBe('a\\x01\\x0a\\x7fz');
    // A cut sequence: the lead byte alone is invalid, what follows is itself.
    expect(escapeName(b([0xe2, 0x82], 'x', [0xe2, 0x82, 0xac]))).toBe('\\xe2\\x82x€');
    expect(escapeName(b('🙂'))).toBe('🙂');
  });
});

describe('ownNameNotUtf8', () => {
  it('is true only for the entry whose own name is bad, not for what is below it', () => {
    expect(ownNameNotUtf8(b('fine/name'))).toBe(false);
    expect(ownNameNotUtf8(b('x', [0xff]))).toBe(true);
    expect(ownNameNotUtf8(b('dir/x', [0xff]))).toBe(true);
    expect(ownNameNotUtf8(b('d', [0xff], '/inside'))).toBe(false);
    expect(ownNameNotUtf8(b('d', [0xff], '/in', [0xfe]))).toBe(false);
  });
});

describe('FindListParser with collectBadNames', () => {
  it('lists every entry as before and reports each bad name once, with its decoded and escaped path', () => {
    expect(FIND_LIST_FORMAT.split('\\0').length - 1).toBe(7);
    const p = new FindListParser('top', true);
    const out = p.push(
      Buffer.concat([
        rec('f', b('caf', [0xe9], '.txt')),
        rec('d', b('d', [0xff])),
        rec('f', b('d', [0xff], '/in')),
        rec('f', b('ok é')),
      ]),
    );
    expect(out.map((e) => e.path)).toEqual(['top/caf\uFFFD.txt', 'top/d\uFFFD', 'top/d\uFFFD/in', 'top/ok é']);
    expect(p.badNames).toEqual([
      { path: 'top/caf\uFFFD.txt', escaped: 'top/caf\\xe9.txt', isDir: false },
      { path: 'top/d\uFFFD', escaped: 'top/d\\xff', isDir: true },
    ]);
  });

  it('collects nothing unless asked', () => {
    const p = new FindListParser('');
    expect(p.push(rec('f', b('x', [0xff]))).length).toBe(1);
    expect(p.badNames).toEqual([]);
  });
});

describe('rsyncListRawName', () => {
  const line = (type: string, name: Buffer): Buffer => b(`${type}rw-r--r--              1 2026/12/07 00:36:05 `, name);

  it('gives the name bytes of a listing line, its \\#ooo escapes undone', () => {
    expect(rsyncListRawName(line('-', b('caf', [0xe9], '.txt')))).toEqual(b('caf', [0xe9], '.txt'));
    expect(rsyncListRawName(line('-', b('ctl\\#001', [0xfe])))).toEqual(b('ctl', [0x01, 0xfe]));
    expect(rsyncListRawName(line('l', b('li', [0xff], 'nk -> target')))).toEqual(b('li', [0xff], 'nk'));
    expect(rsyncListRawName(b('sent 12 bytes'))).toBeNull();
  });
});

describe('the warning', () => {
  it('names the escaped path, says what to do, and lists the path', () => {
    const w = notUtf8OnServer('docs/caf\\xe9.txt');
    expect(w.message).toBe(
      'Skipped docs/caf\\xe9.txt on the server: its name is not valid UTF-8; rename it there to sync it.',
    );
    expect(w.fix).toMatch(/convmv/);
    expect(w.files).toEqual(['docs/caf\\xe9.txt']);
  });
});
