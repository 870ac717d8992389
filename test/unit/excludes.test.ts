import { describe, expect, it } from 'vitest';
import {
  BUILTIN_EXCLUDES,
  createExcluder,
  gitignoreToRsync,
  validateExcludePatterns,
} from '../../electron/engine/excludes.js';

describe('createExcluder', () => {
  it('never excludes the root', () => {
    const ex = createExcluder(['*']);
    expect(ex.ignores('', true)).toBe(false);
    expect(ex.ignores('', false)).toBe(false);
  });

  it('applies the built-in excludes at any depth', () => {
    expect(BUILTIN_EXCLUDES).toEqual(['.DS_Store', 'Thumbs.db', '*.swp', '~$*', '.lipsync/']);
    const ex = createExcluder([]);
    expect(ex.ignores('.DS_Store', false)).toBe(true);
    expect(ex.ignores('a/b/.DS_Store', false)).toBe(true);
    expect(ex.ignores('docs/Thumbs.db', false)).toBe(true);
    expect(ex.ignores('x/.notes.txt.swp', false)).toBe(true);
    expect(ex.ignores('office/~$report.docx', false)).toBe(true);
    expect(ex.ignores('.lipsync', true)).toBe(true);
    expect(ex.ignores('.lipsync/state.db', false)).toBe(true);
    expect(ex.ignores('sub/.lipsync', true)).toBe(true);
    expect(ex.ignores('sub/.lipsync/x/y', false)).toBe(true);
    // Not excluded: similar-looking names.
    expect(ex.ignores('notes.txt', false)).toBe(false);
    expect(ex.ignores('a.swpx', false)).toBe(false);
    expect(ex.ignores('report~$.docx', false)).toBe(false);
    expect(ex.ignores('.lipsyncx', true)).toBe(false);
    expect(ex.ignores('x.lipsync', true)).toBe(false);
    // `.lipsync/` is a directory pattern: a file of that name is not excluded.
    expect(ex.ignores('.lipsync', false)).toBe(false);
  });

  it('matches directory-only patterns against directories only', () => {
    const ex = createExcluder(['build/', '/dist', 'node_modules']);
    expect(ex.ignores('build', true)).toBe(true);
    expect(ex.ignores('build', false)).toBe(false);
    expect(ex.ignores('src/build', true)).toBe(true);
    expect(ex.ignores('src/build/out.o', false)).toBe(true);
    expect(ex.ignores('dist', true)).toBe(true);
    expect(ex.ignores('dist', false)).toBe(true);
    expect(ex.ignores('src/dist', true)).toBe(false);
    expect(ex.ignores('a/node_modules', true)).toBe(true);
    expect(ex.ignores('a/node_modules/x/index.js', false)).toBe(true);
  });

  it('supports globs and negation, in order', () => {
    const ex = createExcluder(['*.log', '!keep.log', 'tmp/**', '!important.swp', '# a comment', '']);
    expect(ex.ignores('a.log', false)).toBe(true);
    expect(ex.ignores('dir/b.log', false)).toBe(true);
    expect(ex.ignores('keep.log', false)).toBe(false);
    expect(ex.ignores('dir/keep.log', false)).toBe(false);
    expect(ex.ignores('tmp/a/b', false)).toBe(true);
    // A negation after the built-ins re-includes a built-in exclude...
    expect(ex.ignores('important.swp', false)).toBe(false);
    expect(ex.ignores('other.swp', false)).toBe(true);
    expect(ex.ignores('# a comment', false)).toBe(false);
  });

  it('never lets user patterns un-exclude .lipsync/', () => {
    const ex = createExcluder(['!.lipsync/', '!.lipsync', '!.lipsync/**', '!**/.lipsync/**']);
    expect(ex.ignores('.lipsync', true)).toBe(true);
    expect(ex.ignores('.lipsync/state.db', false)).toBe(true);
    expect(ex.ignores('a/.lipsync', true)).toBe(true);
    expect(ex.ignores('a/.lipsync/b', true)).toBe(true);
  });

  it('is case-sensitive, like git on Linux', () => {
    const ex = createExcluder(['Build/']);
    expect(ex.ignores('Build', true)).toBe(true);
    expect(ex.ignores('build', true)).toBe(false);
    expect(ex.ignores('.ds_store', false)).toBe(false);
  });

  it('keeps answering correctly across many lookups (bounded cache)', () => {
    const ex = createExcluder(['*.tmp', 'cache/']);
    let wrong = 0;
    for (let i = 0; i < 50_000; i++) {
      if (!ex.ignores(`d${i % 100}/f${i}.tmp`, false)) wrong++;
      if (ex.ignores(`d${i}/f${i}.txt`, false)) wrong++;
      if (!ex.ignores(`d${i}/cache`, true)) wrong++;
      if (ex.ignores(`d${i}/cache`, false)) wrong++;
    }
    expect(wrong).toBe(0);
  });

  it('handles unusual but valid names', () => {
    const ex = createExcluder(['*.bak']);
    expect(ex.ignores('..hidden', false)).toBe(false);
    expect(ex.ignores('a\\b', false)).toBe(false);
    expect(ex.ignores('naïve.bak', false)).toBe(true);
    expect(ex.ignores('spaces in name.bak', false)).toBe(true);
  });
});

describe('validateExcludePatterns', () => {
  it('accepts ordinary patterns, blank lines and comments', () => {
    expect(validateExcludePatterns([])).toBeNull();
    expect(
      validateExcludePatterns([
        '*.log',
        'build/',
        '!keep.log',
        '',
        '   ',
        '# comment',
        '/root-only',
        'a/**/b',
        '\\#literal',
        'x\\ ',
      ]),
    ).toBeNull();
  });

  it('rejects a NUL character', () => {
    const msg = validateExcludePatterns(['ok', 'bad\0name']);
    expect(msg).toMatch(/pattern 2/);
    expect(msg).toMatch(/NUL/);
  });

  it('rejects a line break inside one pattern', () => {
    expect(validateExcludePatterns(['a\nb'])).toMatch(/one pattern per line/);
    expect(validateExcludePatterns(['a\r'])).toMatch(/one pattern per line/);
  });

  it('rejects what git (and ignore) drop: trailing lone backslash, empty negation', () => {
    expect(validateExcludePatterns(['foo\\'])).toMatch(/lone backslash/);
    expect(validateExcludePatterns(['foo\\\\'])).toBeNull();
    expect(validateExcludePatterns(['!'])).toMatch(/negation of nothing/);
    expect(validateExcludePatterns(['/'])).toMatch(/matches nothing/);
  });
});

describe('gitignoreToRsync', () => {
  it.each<[string[], string[] | null]>([
    [[], []],
    [
      ['.DS_Store', '*.swp', '~$*', '.lipsync/'],
      ['.DS_Store', '*.swp', '~$*', '.lipsync/'],
    ],
    // A slash inside anchors at the root in gitignore; rsync needs the leading slash for that.
    [['docs/build'], ['/docs/build']],
    [['/build'], ['/build']],
    [['/build/'], ['/build/']],
    [['a/*.o'], ['/a/*.o']],
    [['node_modules/'], ['node_modules/']],
    [
      ['*.tmp', '?x'],
      ['*.tmp', '?x'],
    ],
    // Blank lines, comments and trailing spaces are dropped, as git does.
    [['', '   ', '# note', 'cache   '], ['cache']],
    // No exact rsync equivalent here: the whole list is untranslated.
    [['*.log', '!keep.log'], null],
    [['a/**/b'], null],
    [['**/x'], null],
    [['[ab].txt'], null],
    [['\\#literal'], null],
    [['x\\ '], null],
    [['- x'], null],
    [['+ x'], null],
    [['/'], null],
  ])('%j → %j', (lines, want) => {
    expect(gitignoreToRsync(lines)).toEqual(want);
  });

  it('is what an excluder offers for rsync, built-ins first', () => {
    expect(createExcluder(['build/']).rsyncRules?.()).toEqual([...BUILTIN_EXCLUDES, 'build/']);
    expect(createExcluder(['!Thumbs.db']).rsyncRules?.()).toBeNull();
  });
});
