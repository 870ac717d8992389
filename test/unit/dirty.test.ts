import { describe, expect, it } from 'vitest';
import { DirtySet, ancestorIn, isUnder, joinPath, parentOf, isUnderAny } from '../../electron/engine/dirty.js';

describe('path helpers', () => {
  it.each([
    ['a', ''],
    ['a/b', 'a'],
    ['a/b/c.txt', 'a/b'],
  ])('parentOf(%j) = %j', (p, parent) => expect(parentOf(p)).toBe(parent));

  it.each([
    ['a/b', 'a', true],
    ['a', 'a', true],
    ['ab', 'a', false],
    ['a.b', 'a', false],
    ['anything', '', true],
    ['a', 'a/b', false],
  ])('isUnder(%j, %j) = %j', (p, anc, want) => expect(isUnder(p, anc)).toBe(want));

  it('joinPath', () => {
    expect(joinPath('', 'x')).toBe('x');
    expect(joinPath('a/b', 'x')).toBe('a/b/x');
  });
});

describe('DirtySet', () => {
  it('groups names by directory and empties on take', () => {
    const d = new DirtySet();
    d.addPath('a/x');
    d.addPath('a/y');
    d.addPath('a/x');
    d.addPath('top');
    expect(d.size).toBe(3);
    const s = d.take();
    expect(s.full).toBe(false);
    expect(new Map(s.dirs)).toEqual(
      new Map<string, string[] | 'all'>([
        ['a', ['x', 'y']],
        ['', ['top']],
      ]),
    );
    expect(d.isEmpty()).toBe(true);
  });

  it('collapses many names in one directory to a directory compare', () => {
    const d = new DirtySet({ perDir: 3, total: 1000 });
    for (const n of ['1', '2', '3', '4', '5']) d.addPath(`dir/${n}`);
    d.addPath('other/z');
    expect(d.size).toBe(2);
    expect(new Map(d.take().dirs).get('dir')).toBe('all');
  });

  it('collapses everything to one full rescan past the total cap', () => {
    const d = new DirtySet({ perDir: 100, total: 10 });
    for (let i = 0; i < 11; i++) d.addPath(`d${i}/f`);
    const s = d.take();
    expect(s.full).toBe(true);
    expect(s.dirs).toEqual([]);
  });

  it('keeps only the outermost of nested trees', () => {
    const d = new DirtySet();
    d.addTree('a/b');
    d.addTree('a');
    d.addTree('ab');
    d.addTree('a/b/c');
    expect(d.take().trees).toEqual(['a', 'ab']);
  });

  it('a tree at the root is a full rescan', () => {
    const d = new DirtySet();
    d.addTree('');
    expect(d.take().full).toBe(true);
  });

  it('isUnderAny: a path at or below one of a set of folders, by whole names', () => {
    const trees = new Set(['a/b', 'c']);
    expect(isUnderAny('a/b', trees)).toBe(true);
    expect(isUnderAny('a/b/x/y', trees)).toBe(true);
    expect(isUnderAny('c/d', trees)).toBe(true);
    expect(isUnderAny('a', trees)).toBe(false);
    expect(isUnderAny('a/bc', trees)).toBe(false);
    expect(isUnderAny('cc', trees)).toBe(false);
    expect(isUnderAny('', trees)).toBe(false);
    expect(isUnderAny('x', new Set(['']))).toBe(true);
    expect(isUnderAny('x', new Set())).toBe(false);
  });

  it('ancestorIn: which of a set of folders a path is at or below, the deepest one', () => {
    const trees = new Set(['a', 'a/b', 'c']);
    expect(ancestorIn('a/b/x', trees)).toBe('a/b');
    expect(ancestorIn('a/bc', trees)).toBe('a');
    expect(ancestorIn('c', trees)).toBe('c');
    expect(ancestorIn('d/e', trees)).toBeNull();
    expect(ancestorIn('d/e', new Set(['']))).toBe('');
    expect(ancestorIn('d/e', new Set())).toBeNull();
  });
});
