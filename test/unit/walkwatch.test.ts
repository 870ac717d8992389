/**
 * walkwatch's pure parts: its arguments, where it may run, the session script's
 * choice between it and inotifywait, and how the first walk's records become a
 * dirty snapshot. Its behaviour as a watcher is tested against the kernel in
 * test/integration/watcher.test.ts and remote-watch.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createExcluder } from '../../electron/engine/excludes.js';
import { inotifySessionScript } from '../../electron/engine/remote/watch.js';
import type { InotifyRecord } from '../../electron/engine/watch/inotifywait.js';
import {
  findPerl,
  SinceCollector,
  takeWalkRecords,
  walkwatchArgs,
  WALKWATCH_PL,
} from '../../electron/engine/watch/walkwatch.js';

const rec = (events: string, path: string): InotifyRecord => ({ events: events.split(','), path });

describe('walkwatchArgs', () => {
  it('passes the script, the root and the moment: none, whole seconds (rounded down), or a marker file', () => {
    expect(walkwatchArgs('/r', null)).toEqual(['-e', WALKWATCH_PL, '--', '/r', '-']);
    expect(walkwatchArgs('/r', { ms: 1_700_000_000_999 })).toEqual(['-e', WALKWATCH_PL, '--', '/r', '@1700000000']);
    expect(walkwatchArgs('/r x', { markerFile: '/r x/.lipsync/poll-marker-p1' })).toEqual([
      '-e',
      WALKWATCH_PL,
      '--',
      '/r x',
      'M/r x/.lipsync/poll-marker-p1',
    ]);
  });

  it('is a script with no NUL byte and no shell-significant backtick (it is passed as one argument)', () => {
    expect(WALKWATCH_PL).not.toContain('\0');
    expect(WALKWATCH_PL).not.toContain('`');
    expect(WALKWATCH_PL).toContain('"\\0"'); // Perl's own escape, kept literal
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
    expect(s).toMatch(/if command -v perl >\/dev\/null 2>&1 && perl -MConfig -e .+; then\nperl -e /);
    expect(s).toContain(
      `'/srv/it'\\''s' 'M/srv/it'\\''s/.lipsync/poll-marker-p1' </dev/null 3<&- &\nelse\ninotifywait `,
    );
    expect(inotifySessionScript('/srv', {})).toMatch(/ '?\/srv'? '?-'? <\/dev\/null/);
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
