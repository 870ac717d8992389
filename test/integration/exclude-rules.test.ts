/**
 * The excludes handed to rsync when a new folder is sent whole (Excluder.rsyncRules)
 * must exclude exactly what the engine's excluder does. Checked with the real rsync:
 * the same folder-push arguments (rsyncTreePushArgs) from a tree of tricky names into
 * a staging folder of a local "server", against the excluder's verdict for each path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExcluder, isIgnoredPath } from '../../electron/engine/excludes.js';
import { rsyncTreePushArgs } from '../../electron/engine/remote/rsync-args.js';
import { listFiles } from '../support/cli.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lipsync-exclrules-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Files of the tree (folders are implied by them); the roots sent are `docs` and `a/b/new`. */
const FILES = [
  'docs/readme.md',
  'docs/.DS_Store',
  'docs/notes.txt.swp',
  'docs/~$report.docx',
  'docs/build/out.o',
  'docs/build/sub/x.o',
  'docs/src/build/keep-or-not.c',
  'docs/src/main.c',
  'docs/src/main.o',
  'docs/cache/c1',
  'docs/Thumbs.db',
  'docs/deep/er/still/file.tmp',
  'docs/deep/er/still/file.txt',
  'docs/x.log',
  'docs/build.txt',
  'docs/node_modules/pkg/index.js',
  'docs/sub/.lipsync/inner',
  'a/b/new/build/y.o',
  'a/b/new/photo.jpg',
  'a/b/new/docs/build/z',
  'a/b/new/space name/ünïcødé ✓.txt',
];

const PATTERN_SETS: string[][] = [
  [],
  ['build/'],
  ['build'],
  ['/docs/build'],
  ['docs/build/'],
  // Anchored at the root by gitignore (a slash inside): docs/src/build stays.
  ['src/build'],
  ['*.o', '*.tmp', 'cache/'],
  ['node_modules/', 'x.log', '?ache'],
  ['a/b/new/build', 'deep/er/'],
  ['docs/*.txt', 'space name/'],
];

describe('rsync excludes equal the excluder', () => {
  it.each(PATTERN_SETS.map((p) => [p]))('%j', (patterns) => {
    const ex = createExcluder(patterns);
    const rules = ex.rsyncRules?.();
    expect(rules).not.toBeNull();
    const work = mkdtempSync(join(tmp, 'w-'));
    const src = join(work, 'local');
    const server = join(work, 'server');
    for (const f of FILES) {
      mkdirSync(join(src, f, '..'), { recursive: true });
      writeFileSync(join(src, f), f);
    }
    mkdirSync(join(server, '.lipsync', 'incoming'), { recursive: true });
    const args = rsyncTreePushArgs({
      localRoot: src,
      remote: { kind: 'local', path: server },
      ssh: { controlDir: join(work, 'ctl') },
      stagingDir: '.lipsync/incoming/t-1',
      excludes: rules!,
    });
    const r = spawnSync('rsync', args, { input: './docs\0./a/b/new\0', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const got = listFiles(join(server, '.lipsync', 'incoming', 't-1')).sort();
    const want = FILES.filter((f) => !isIgnoredPath(f, false, ex)).sort();
    expect(got).toEqual(want);
    // The built-ins alone leave out five of the files (.DS_Store, *.swp, ~$*, Thumbs.db, .lipsync/).
    expect(want.length).toBeLessThanOrEqual(FILES.length - 5);
  });
});
