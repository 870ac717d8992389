/**
 * The reconciler, row by row against docs/sync-semantics.md ("Decisions"):
 * every row has cases in all three directions, the code's table is checked
 * against the doc's table, and 10,000 random inputs check the safety
 * properties (nothing lost, directions respected, every rule documented).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Direction } from '../../shared/settings.js';
import {
  RULES,
  RULE_TABLE,
  conflictCopyName,
  reconcile,
  type ActionType,
  type Decision,
  type ReconcileInput,
  type SideState,
} from '../../electron/engine/reconcile.js';
import { mulberry32 } from '../support/prng.js';

const DOC = readFileSync(new URL('../../docs/sync-semantics.md', import.meta.url), 'utf8');
const DIRECTIONS: readonly Direction[] = ['two-way', 'send-only', 'receive-only'];
/** Whether the doc has a table row for rule `id` (cells may be padded by prettier). */
const docHasRow = (id: string): boolean => new RegExp(`^\\|\\s*${id}\\s*\\|`, 'm').test(DOC);

// ------------------------------------------------------------------ states

const file = (size = 10, mtime = 1n, mode = 0o644): SideState => ({
  kind: 'file',
  size,
  mtimeNs: mtime,
  mode,
  target: null,
});
const dir = (mode = 0o755): SideState => ({ kind: 'dir', size: 0, mtimeNs: 1n, mode, target: null });
const link = (target: string): SideState => ({
  kind: 'symlink',
  size: target.length,
  mtimeNs: 1n,
  mode: 0o777,
  target,
});

/** Every rule any test saw returned: at the end, each RULES key must be in it. */
const hit = new Set<string>();

function decide(i: ReconcileInput): Decision {
  const d = reconcile(i);
  hit.add(d.rule);
  return d;
}

// ------------------------------------------------------------------ row by row

type Want = [ActionType, ActionType, ActionType]; // two-way, send-only, receive-only

interface Case {
  title: string;
  rule: string;
  base: SideState | null;
  local: SideState | null;
  remote: SideState | null;
  lc?: boolean;
  rc?: boolean;
  same?: boolean;
  want: Want;
}

const CASES: Case[] = [
  // R1–R3: quiet
  { title: 'absent everywhere', rule: 'R1', base: null, local: null, remote: null, want: ['none', 'none', 'none'] },
  {
    title: 'deleted on both sides',
    rule: 'R2',
    base: file(),
    local: null,
    remote: null,
    lc: true,
    rc: true,
    want: ['forget', 'forget', 'forget'],
  },
  {
    title: 'deleted on both sides, flags unset',
    rule: 'R2',
    base: dir(),
    local: null,
    remote: null,
    want: ['forget', 'forget', 'forget'],
  },
  { title: 'file unchanged', rule: 'R3', base: file(), local: file(), remote: file(), want: ['none', 'none', 'none'] },
  { title: 'dir unchanged', rule: 'R3', base: dir(), local: dir(), remote: dir(), want: ['none', 'none', 'none'] },
  {
    title: 'symlink unchanged',
    rule: 'R3',
    base: link('x'),
    local: link('x'),
    remote: link('x'),
    want: ['none', 'none', 'none'],
  },

  // R4–R5: one side only, no base (new, or first sync)
  { title: 'new local file', rule: 'R4', base: null, local: file(), remote: null, want: ['push', 'push', 'none'] },
  { title: 'new local empty dir', rule: 'R4', base: null, local: dir(), remote: null, want: ['push', 'push', 'none'] },
  {
    title: 'new local symlink (outside the root)',
    rule: 'R4',
    base: null,
    local: link('../../etc/passwd'),
    remote: null,
    want: ['push', 'push', 'none'],
  },
  { title: 'new remote file', rule: 'R5', base: null, local: null, remote: file(), want: ['pull', 'none', 'pull'] },
  { title: 'new remote dir', rule: 'R5', base: null, local: null, remote: dir(), want: ['pull', 'none', 'pull'] },
  {
    title: 'new remote symlink',
    rule: 'R5',
    base: null,
    local: null,
    remote: link('/abs'),
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'flags ignored without base',
    rule: 'R5',
    base: null,
    local: null,
    remote: file(),
    lc: true,
    rc: false,
    want: ['pull', 'none', 'pull'],
  },

  // R6–R9: only local changed
  {
    title: 'local dir chmod',
    rule: 'R6',
    base: dir(0o755),
    local: dir(0o700),
    remote: dir(0o755),
    lc: true,
    want: ['push', 'push', 'none'],
  },
  {
    title: 'local file edited',
    rule: 'R7',
    base: file(10, 1n),
    local: file(20, 2n),
    remote: file(10, 1n),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local file touched (same size)',
    rule: 'R7',
    base: file(10, 1n),
    local: file(10, 5n),
    remote: file(10, 1n),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local chmod +x',
    rule: 'R7',
    base: file(),
    local: file(10, 1n, 0o755),
    remote: file(),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local symlink retargeted',
    rule: 'R7',
    base: link('a'),
    local: link('b'),
    remote: link('a'),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local file → dir',
    rule: 'R7',
    base: file(),
    local: dir(),
    remote: file(),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local dir → symlink',
    rule: 'R7',
    base: dir(),
    local: link('t'),
    remote: dir(),
    lc: true,
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local kind change counts even with flag unset',
    rule: 'R7',
    base: file(),
    local: link('t'),
    remote: file(),
    want: ['push', 'push', 'keep-local-aside'],
  },
  {
    title: 'local dir deleted',
    rule: 'R8',
    base: dir(),
    local: null,
    remote: dir(),
    want: ['delete-dir-if-empty-remote', 'delete-dir-if-empty-remote', 'pull'],
  },
  {
    title: 'local file deleted',
    rule: 'R9',
    base: file(),
    local: null,
    remote: file(),
    lc: true,
    want: ['delete-remote', 'delete-remote', 'pull'],
  },
  {
    title: 'local symlink deleted',
    rule: 'R9',
    base: link('a'),
    local: null,
    remote: link('a'),
    want: ['delete-remote', 'delete-remote', 'pull'],
  },

  // R10–R13: only remote changed
  {
    title: 'remote dir chmod',
    rule: 'R10',
    base: dir(0o755),
    local: dir(0o755),
    remote: dir(0o750),
    rc: true,
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'remote file edited',
    rule: 'R11',
    base: file(10),
    local: file(10),
    remote: file(30, 3n),
    rc: true,
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'remote chmod +x',
    rule: 'R11',
    base: file(),
    local: file(),
    remote: file(10, 1n, 0o755),
    rc: true,
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'remote symlink retargeted',
    rule: 'R11',
    base: link('a'),
    local: link('a'),
    remote: link('c'),
    rc: true,
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'remote dir → file',
    rule: 'R11',
    base: dir(),
    local: dir(),
    remote: file(),
    rc: true,
    want: ['pull', 'none', 'pull'],
  },
  {
    title: 'remote dir deleted',
    rule: 'R12',
    base: dir(),
    local: dir(),
    remote: null,
    rc: true,
    want: ['delete-dir-if-empty-local', 'push', 'delete-dir-if-empty-local'],
  },
  {
    title: 'remote file deleted',
    rule: 'R13',
    base: file(),
    local: file(),
    remote: null,
    rc: true,
    want: ['delete-local', 'push', 'delete-local'],
  },
  {
    title: 'remote symlink deleted',
    rule: 'R13',
    base: link('a'),
    local: link('a'),
    remote: null,
    want: ['delete-local', 'push', 'delete-local'],
  },

  // R14–R15: delete against modify
  {
    title: 'deleted here, edited there',
    rule: 'R14',
    base: file(10),
    local: null,
    remote: file(11, 2n),
    lc: true,
    rc: true,
    want: ['pull', 'forget', 'pull'],
  },
  {
    title: 'deleted here, there file → dir',
    rule: 'R14',
    base: file(),
    local: null,
    remote: dir(),
    want: ['pull', 'forget', 'pull'],
  },
  {
    title: 'dir deleted here, chmod there',
    rule: 'R14',
    base: dir(0o755),
    local: null,
    remote: dir(0o700),
    rc: true,
    want: ['pull', 'forget', 'pull'],
  },
  {
    title: 'edited here, deleted there',
    rule: 'R15',
    base: file(10),
    local: file(12, 2n),
    remote: null,
    lc: true,
    rc: true,
    want: ['push', 'push', 'forget'],
  },
  {
    title: 'here symlink → file, deleted there',
    rule: 'R15',
    base: link('a'),
    local: file(),
    remote: null,
    want: ['push', 'push', 'forget'],
  },

  // R16–R19: both present, both changed (or no base)
  {
    title: 'both created the same dir (first sync)',
    rule: 'R16',
    base: null,
    local: dir(0o755),
    remote: dir(0o700),
    want: ['record', 'record', 'record'],
  },
  {
    title: 'both chmod a dir',
    rule: 'R16',
    base: dir(0o755),
    local: dir(0o700),
    remote: dir(0o750),
    lc: true,
    rc: true,
    want: ['record', 'record', 'record'],
  },
  {
    title: 'both turned a file into a dir',
    rule: 'R16',
    base: file(),
    local: dir(),
    remote: dir(),
    lc: true,
    rc: true,
    want: ['record', 'record', 'record'],
  },
  {
    title: 'both retargeted a symlink alike',
    rule: 'R16',
    base: link('a'),
    local: link('b'),
    remote: link('b'),
    lc: true,
    rc: true,
    want: ['record', 'record', 'record'],
  },
  {
    title: 'first sync, equal symlinks',
    rule: 'R16',
    base: null,
    local: link('b'),
    remote: link('b'),
    want: ['record', 'record', 'record'],
  },
  {
    title: 'both edited alike (compared)',
    rule: 'R16',
    base: file(10),
    local: file(20, 5n),
    remote: file(20, 6n),
    lc: true,
    rc: true,
    same: true,
    want: ['record', 'record', 'record'],
  },
  {
    title: 'first sync, same content',
    rule: 'R16',
    base: null,
    local: file(20, 5n),
    remote: file(20, 9n),
    same: true,
    want: ['record', 'record', 'record'],
  },
  {
    title: 'same content, exec bit differs',
    rule: 'R17',
    base: file(10),
    local: file(20, 2n, 0o755),
    remote: file(20, 3n, 0o644),
    lc: true,
    rc: true,
    same: true,
    want: ['pull', 'push', 'pull'],
  },
  {
    title: 'first sync, same content, exec bit differs',
    rule: 'R17',
    base: null,
    local: file(20, 2n, 0o644),
    remote: file(20, 3n, 0o700),
    same: true,
    want: ['pull', 'push', 'pull'],
  },
  {
    title: 'both edited, same size',
    rule: 'R18',
    base: file(10),
    local: file(20, 2n),
    remote: file(20, 3n),
    lc: true,
    rc: true,
    want: ['compare', 'compare', 'compare'],
  },
  {
    title: 'first sync, same size',
    rule: 'R18',
    base: null,
    local: file(20, 2n),
    remote: file(20, 2n),
    want: ['compare', 'compare', 'compare'],
  },
  {
    title: 'both edited, sizes differ',
    rule: 'R19',
    base: file(10),
    local: file(20, 2n),
    remote: file(30, 3n),
    lc: true,
    rc: true,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'both edited, compared different',
    rule: 'R19',
    base: file(10),
    local: file(20, 2n),
    remote: file(20, 3n),
    lc: true,
    rc: true,
    same: false,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'sizes differ even if sameContent says true',
    rule: 'R19',
    base: file(10),
    local: file(20),
    remote: file(21),
    lc: true,
    rc: true,
    same: true,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'first sync, sizes differ',
    rule: 'R19',
    base: null,
    local: file(1),
    remote: file(2),
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'both retargeted a symlink differently',
    rule: 'R19',
    base: link('a'),
    local: link('b'),
    remote: link('c'),
    lc: true,
    rc: true,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'kinds changed differently (dir here, symlink there)',
    rule: 'R19',
    base: file(),
    local: dir(),
    remote: link('t'),
    lc: true,
    rc: true,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'first sync, file here, dir there',
    rule: 'R19',
    base: null,
    local: file(),
    remote: dir(),
    want: ['conflict', 'push', 'keep-local-aside'],
  },
  {
    title: 'edited here, there file → dir',
    rule: 'R19',
    base: file(),
    local: file(99, 9n),
    remote: dir(),
    lc: true,
    rc: true,
    want: ['conflict', 'push', 'keep-local-aside'],
  },
];

describe('reconcile: the rows of docs/sync-semantics.md', () => {
  const rows = CASES.flatMap((c) => DIRECTIONS.map((direction, k) => ({ ...c, direction, action: c.want[k]! })));
  it.each(rows)('$rule $direction: $title → $action', (c) => {
    const d = decide({
      path: 'p',
      base: c.base,
      local: c.local,
      remote: c.remote,
      localChanged: c.lc ?? false,
      remoteChanged: c.rc ?? false,
      sameContent: c.same,
      direction: c.direction,
    });
    expect({ rule: d.rule, action: d.action }).toEqual({ rule: c.rule, action: c.action });
    expect(d.why.length).toBeGreaterThan(0);
  });
});

describe('reconcile: compare, then decide with sameContent', () => {
  const input = (direction: Direction, sameContent?: boolean): ReconcileInput => ({
    path: 'doc.txt',
    base: file(10, 1n),
    local: file(20, 2n),
    remote: file(20, 3n),
    localChanged: true,
    remoteChanged: true,
    sameContent,
    direction,
  });
  it.each(DIRECTIONS)('%s: compare → record when equal, conflict-like when not', (direction) => {
    expect(decide(input(direction)).action).toBe('compare');
    expect(decide(input(direction, true))).toMatchObject({ action: 'record', rule: 'R16' });
    const differ = decide(input(direction, false));
    expect(differ.rule).toBe('R19');
    expect(differ.action).toBe(
      { 'two-way': 'conflict', 'send-only': 'push', 'receive-only': 'keep-local-aside' }[direction],
    );
  });
});

describe('the code table and the doc table line up', () => {
  /** `| R7 | situation | two-way | send-only | receive-only |` rows of the Decisions table. */
  const docRows = DOC.split('\n')
    .filter((l) => /^\|\s*R\d+\s*\|/.test(l))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );

  it('same rows, same order, same situation text, same actions', () => {
    expect(docRows.map((r) => r[0])).toEqual(RULE_TABLE.map((r) => r.id));
    for (const [i, row] of RULE_TABLE.entries()) {
      const doc = docRows[i]!;
      expect(doc[1]).toBe(row.when);
      expect(doc.slice(2)).toEqual([row.actions['two-way'], row.actions['send-only'], row.actions['receive-only']]);
    }
  });

  it('RULES is the table: one line per row, naming the situation and the actions', () => {
    expect(Object.keys(RULES)).toEqual(RULE_TABLE.map((r) => r.id));
    for (const row of RULE_TABLE) {
      const line = RULES[row.id]!;
      expect(line.startsWith(row.when)).toBe(true);
      for (const d of DIRECTIONS) expect(line).toContain(row.actions[d]);
      expect(docHasRow(row.id)).toBe(true);
    }
  });

  it('every action named in the table is explained in the doc', () => {
    const actions = new Set(RULE_TABLE.flatMap((r) => DIRECTIONS.map((d) => r.actions[d])));
    for (const a of actions) expect(DOC).toContain(`**${a}**`);
  });
});

// ------------------------------------------------------------------ properties

function randomInput(rand: () => number): ReconcileInput {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const state = (): SideState | null => {
    if (rand() < 0.25) return null;
    const kind = pick(['file', 'dir', 'symlink'] as const);
    if (kind === 'dir') return dir(pick([0o755, 0o700]));
    if (kind === 'symlink') return link(pick(['a', 'b']));
    return file(pick([1, 2]), pick([1n, 2n]), pick([0o644, 0o755]));
  };
  const base = rand() < 0.25 ? null : state();
  const local = state();
  const remote = state();
  // Mostly honest flags (what the caller computes), sometimes arbitrary ones.
  const honest = (s: SideState | null): boolean =>
    !s ||
    !base ||
    s.kind !== base.kind ||
    s.size !== base.size ||
    s.mtimeNs !== base.mtimeNs ||
    s.mode !== base.mode ||
    s.target !== base.target;
  const flag = (s: SideState | null): boolean => (rand() < 0.7 ? honest(s) : rand() < 0.5);
  return {
    path: 'x',
    base,
    local,
    remote,
    localChanged: flag(local),
    remoteChanged: flag(remote),
    sameContent: pick([undefined, true, false]),
    direction: pick(DIRECTIONS),
  };
}

/** Changed since the base, as the doc defines it: absent, kind differs, or the caller's flag. */
function changedSince(s: SideState | null, base: SideState | null, flag: boolean): boolean {
  if (!base) return s !== null;
  return s === null || flag || s.kind !== base.kind;
}

const CHANGES_LOCAL: readonly ActionType[] = [
  'pull',
  'delete-local',
  'delete-dir-if-empty-local',
  'conflict',
  'keep-local-aside',
];
const CHANGES_REMOTE: readonly ActionType[] = ['push', 'delete-remote', 'delete-dir-if-empty-remote', 'conflict'];

describe('reconcile: properties on 10,000 random inputs', () => {
  it('nothing lost, directions respected, every rule documented', () => {
    const rand = mulberry32(0x11b5);
    const seen = new Set<string>();
    for (let n = 0; n < 10_000; n++) {
      const i = randomInput(rand);
      const d = decide(i);
      seen.add(d.rule);
      const ctx = `case ${n}: ${JSON.stringify(i, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))} → ${JSON.stringify(d)}`;
      const lc = changedSince(i.local, i.base, i.localChanged);
      const rc = changedSince(i.remote, i.base, i.remoteChanged);

      // Every rule is a row of RULES and of the doc.
      expect(RULES[d.rule], ctx).toBeDefined();
      expect(docHasRow(d.rule), ctx).toBe(true);

      // Nothing is lost: a side is deleted only if it is present, has a base, and did not change.
      if (d.action === 'delete-local' || d.action === 'delete-dir-if-empty-local') {
        expect(i.base !== null && i.local !== null && !lc, ctx).toBe(true);
      }
      if (d.action === 'delete-remote' || d.action === 'delete-dir-if-empty-remote') {
        expect(i.base !== null && i.remote !== null && !rc, ctx).toBe(true);
      }
      if (d.action === 'delete-dir-if-empty-local') expect(i.local?.kind, ctx).toBe('dir');
      if (d.action === 'delete-dir-if-empty-remote') expect(i.remote?.kind, ctx).toBe('dir');
      // push/pull copy something that exists; deletions are spelled out.
      if (d.action === 'push') expect(i.local, ctx).not.toBeNull();
      if (d.action === 'pull') expect(i.remote, ctx).not.toBeNull();
      if (d.action === 'conflict' || d.action === 'keep-local-aside' || d.action === 'compare') {
        expect(i.local !== null && i.remote !== null, ctx).toBe(true);
      }
      if (d.action === 'compare') {
        expect(i.local?.kind === 'file' && i.remote?.kind === 'file' && i.local.size === i.remote.size, ctx).toBe(true);
        expect(i.sameContent, ctx).toBeUndefined();
      }
      // Two-way never overwrites a changed version with a different one.
      if (i.direction === 'two-way') {
        if (d.action === 'push') expect(i.remote === null || !rc, ctx).toBe(true);
        if (d.action === 'pull') expect(i.local === null || !lc || d.rule === 'R17', ctx).toBe(true);
      }
      // Directions.
      if (i.direction === 'send-only') expect(CHANGES_LOCAL, ctx).not.toContain(d.action);
      if (i.direction === 'receive-only') expect(CHANGES_REMOTE, ctx).not.toContain(d.action);
    }
    // The random inputs reach every row.
    expect([...seen].sort()).toEqual(Object.keys(RULES).sort());
  });

  it('is deterministic and pure: same input, same decision; input not modified', () => {
    const rand = mulberry32(7);
    for (let n = 0; n < 500; n++) {
      const i = randomInput(rand);
      const copy = structuredClone(i);
      expect(reconcile(i)).toEqual(reconcile(copy));
      expect(i).toEqual(copy);
    }
  });
});

// ------------------------------------------------------------------ conflict copy names

describe('conflictCopyName (rules C1, C2)', () => {
  const when = new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 500));
  const tag = 'conflicted copy laptop 2024-05-06 070809';

  it.each([
    ['a/report.pdf', `a/report (${tag}).pdf`],
    ['notes', `notes (${tag})`],
    ['.bashrc', `.bashrc (${tag})`],
    ['archive.tar.gz', `archive.tar (${tag}).gz`],
    ['dir.d/file', `dir.d/file (${tag})`],
    ['x/.config.json', `x/.config (${tag}).json`],
    ['trailing.', `trailing. (${tag})`],
    ['deep/a/b/c.TXT', `deep/a/b/c (${tag}).TXT`],
    ['café/ñ.md', `café/ñ (${tag}).md`],
  ])('%j → %j', (path, want) => {
    expect(conflictCopyName(path, 'laptop', when)).toBe(want);
  });

  it('uses UTC, HHMMSS without separators', () => {
    expect(conflictCopyName('f', 'h', new Date(Date.UTC(2024, 11, 31, 23, 59, 59)))).toBe(
      'f (conflicted copy h 2024-12-31 235959)',
    );
    expect(conflictCopyName('f', 'h', new Date(Date.UTC(2025, 0, 1, 0, 0, 0)))).toBe(
      'f (conflicted copy h 2025-01-01 000000)',
    );
  });

  it('adds 2, 3, … inside the parentheses when a name is taken', () => {
    const taken = new Set([`a/report (${tag}).pdf`, `a/report (${tag} 2).pdf`]);
    const asked: string[] = [];
    const exists = (p: string): boolean => {
      asked.push(p);
      return taken.has(p);
    };
    expect(conflictCopyName('a/report.pdf', 'laptop', when, exists)).toBe(`a/report (${tag} 3).pdf`);
    expect(asked).toEqual([`a/report (${tag}).pdf`, `a/report (${tag} 2).pdf`, `a/report (${tag} 3).pdf`]);
    expect(conflictCopyName('.bashrc', 'laptop', when, (p) => p === `.bashrc (${tag})`)).toBe(`.bashrc (${tag} 2)`);
    expect(conflictCopyName('notes', 'laptop', when, () => false)).toBe(`notes (${tag})`);
  });

  it('a host name cannot add path components', () => {
    expect(conflictCopyName('d/f.txt', 'evil/../host', when)).toBe(
      'd/f (conflicted copy evil-..-host 2024-05-06 070809).txt',
    );
  });

  it('keeps the name within 255 bytes, shortening the stem', () => {
    const stem = 'é'.repeat(200); // 400 bytes
    const out = conflictCopyName(`d/${stem}.pdf`, 'laptop', when);
    const base = out.slice(2);
    expect(Buffer.byteLength(base)).toBeLessThanOrEqual(255);
    expect(base.endsWith(` (${tag}).pdf`)).toBe(true);
    expect(base.startsWith('éé')).toBe(true);
  });
});

describe('coverage', () => {
  it('every rule in RULES was hit by some case above', () => {
    expect(Object.keys(RULES).filter((r) => !hit.has(r))).toEqual([]);
    // And the hand-written cases alone reach every row too.
    expect(new Set(CASES.map((c) => c.rule))).toEqual(new Set(Object.keys(RULES)));
  });
});
