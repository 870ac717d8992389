/**
 * walkwatch's pure parts: its arguments, where it may run, the session script's
 * choice between it and inotifywait, and how the first walk's records become a
 * dirty snapshot. Its behaviour as a watcher is tested against the kernel in
 * test/integration/watcher.test.ts and remote-watch.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createExcluder } from '../../electron/engine/excludes.js';
import { inotifySessionScript } from '../../electron/engine/remote/watch-inotify-ssh.js';
import type { InotifyRecord } from '../../electron/engine/watch/records.js';
import {
  findPerl,
  SinceCollector,
  syscallCaseScript,
  takeWalkRecords,
  walkwatchArgs,
  WALKWATCH_PL,
} from '../../electron/engine/watch/walkwatch.js';

const rec = (events: string, path: string): InotifyRecord => ({ events: events.split(','), path });

describe('walkwatchArgs', () => {
  it('passes the script, the root, the moment (none, whole seconds rounded down, or a marker file) and the syscall numbers', () => {
    const x64 = ['294', '254', '255'];
    expect(walkwatchArgs('/r', null, 'x64')).toEqual(['-e', WALKWATCH_PL, '--', '/r', '-', ...x64]);
    expect(walkwatchArgs('/r', { ms: 1_700_000_000_999 }, 'x64')).toEqual([
      '-e',
      WALKWATCH_PL,
      '--',
      '/r',
      '@1700000000',
      ...x64,
    ]);
    expect(walkwatchArgs('/r x', { markerFile: '/r x/.lipsync/poll-marker-p1' }, 'arm64')).toEqual([
      '-e',
      WALKWATCH_PL,
      '--',
      '/r x',
      'M/r x/.lipsync/poll-marker-p1',
      '26',
      '27',
      '28',
    ]);
    // No numbers where they are unknown: the script then exits 97 (findPerl keeps it from being run).
    expect(walkwatchArgs('/r', null, 'ia32')).toEqual(['-e', WALKWATCH_PL, '--', '/r', '-']);
  });

  it('sets the numbers on the server from uname -m, in one sh case', () => {
    expect(syscallCaseScript()).toBe(
      "case $(uname -m 2>/dev/null) in x86_64) nr='294 254 255' ;; aarch64) nr='26 27 28' ;; riscv64) nr='26 27 28' ;; loongarch64) nr='26 27 28' ;; *) nr= ;; esac",
    );
  });

  it('is a script with no NUL byte and no shell-significant backtick (it is passed as one argument)', () => {
    expect(WALKWATCH_PL).not.toContain('\0');
    expect(WALKWATCH_PL).not.toContain('`');
    expect(WALKWATCH_PL).toContain('"\\0"'); // Perl's own escape, kept literal
    expect(WALKWATCH_PL).not.toMatch(/^\s*(use|require)\b/m); // no module: a small process
  });
});

describe('findPerl', () => {
  const env = { PATH: '/usr/bin:/bin' };
  it('finds perl on Linux where the syscall numbers are known', () => {
    if (process.platform !== 'linux') return expect(findPerl(undefined, env)).toBeNull();
    expect(findPerl(undefined, env, 'x64')).toMatch(/\/perl$/);
    expect(findPerl('/opt/perl', env, 'arm64')).toBe('/opt/perl');
  });
  it('is null with LIPSYNC_WALKWATCH=0, on an architecture it does not know, or without perl', () => {
    expect(findPerl(undefined, { ...env, LIPSYNC_WALKWATCH: '0' }, 'x64')).toBeNull();
    expect(findPerl('/opt/perl', env, 'ia32')).toBeNull();
    expect(findPerl(undefined, { PATH: '/nonexistent' }, 'x64')).toBeNull();
  });
});

describe('inotifySessionScript', () => {
  it('runs walkwatch where perl can, else inotifywait; still requires inotifywait (the mode the probe chose)', () => {
    const s = inotifySessionScript("/srv/it's", { sinceMarker: '.lipsync/poll-marker-p1' });
    expect(s).toContain('command -v inotifywait');
    expect(s).toContain(`${syscallCaseScript()}\nif [ -n "$nr" ] && command -v perl >/dev/null 2>&1; then\nperl -e `);
    expect(s).toContain(
      `'/srv/it'\\''s' 'M/srv/it'\\''s/.lipsync/poll-marker-p1' $nr </dev/null 3<&- &\nelse\ninotifywait `,
    );
    expect(inotifySessionScript('/srv', {})).toMatch(/ '?\/srv'? '?-'? \$nr <\/dev\/null/);
  });

  it('runs inotifywait alone without walk', () => {
    const s = inotifySessionScript('/srv', null);
    expect(s).not.toContain('perl');
    expect(s).toMatch(/\ninotifywait .+ <\/dev\/null 3<&- &\nw=\$!/);
  });
});

describe('the first walk', () => {
  it('takes SINCE, NOSINCE and READY records out; events pass through in order', () => {
    const c = new SinceCollector();
    const out = takeWalkRecords(
      [rec('SINCE', '/r/a'), rec('CREATE', '/r/b'), rec('READY', ''), rec('DELETE', '/r/c')],
      '/r',
      c,
    );
    expect(out.ready).toBe(true);
    expect(out.rest.map((r) => r.path)).toEqual(['/r/b', '/r/c']);
    expect(c.result()).toEqual({ full: false, trees: [], dirs: [['', ['a']]], since: null });
  });

  it('passes inotifywait output (no walk records) through untouched, and is not ready by itself', () => {
    const recs = [rec('CREATE', '/r/b'), rec('CLOSE_WRITE,CLOSE', '/r/b')];
    expect(takeWalkRecords(recs, '/r', null)).toEqual({ ready: false, rest: recs });
  });

  it('lists files as paths and folders as "compare this folder", as the find listing does', () => {
    const c = new SinceCollector();
    for (const r of [
      rec('SINCE,ISDIR', '/r'),
      rec('SINCE,ISDIR', '/r/d'),
      rec('SINCE', '/r/d/f'),
      rec('SINCE', '/r/e/g'),
      rec('SINCE,ISDIR', '/r/.lipsync'),
      rec('SINCE', '/r/.lipsync/x'),
    ])
      takeWalkRecords([r], '/r', c);
    const snap = c.result()!;
    expect(new Map(snap.dirs)).toEqual(
      new Map<string, string[] | 'all'>([
        ['', 'all'],
        ['d', 'all'],
        ['e', ['g']],
      ]),
    );
  });

  it('leaves out what the excluder ignores, at any depth', () => {
    const c = new SinceCollector(createExcluder(['*.tmp', 'build/']));
    takeWalkRecords(
      [rec('SINCE', '/r/a.tmp'), rec('SINCE', '/r/build/x'), rec('SINCE,ISDIR', '/r/build'), rec('SINCE', '/r/k')],
      '/r',
      c,
    );
    expect(c.result()!.dirs).toEqual([['', ['k']]]);
  });

  it('is null (compare everything) after NOSINCE: a missing marker or a folder it could not read', () => {
    const c = new SinceCollector();
    takeWalkRecords([rec('SINCE', '/r/a'), rec('NOSINCE', ''), rec('READY', '')], '/r', c);
    expect(c.result()).toBeNull();
  });
});
