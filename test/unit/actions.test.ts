import { describe, expect, it } from 'vitest';
import {
  ACTIONS,
  firstSyncPass,
  reconcile,
  RULE_TABLE,
  type ActionType,
  type SideState,
} from '../../electron/engine/reconcile.js';

const file = (size: number): SideState => ({ kind: 'file', size, mtimeNs: 1n, mode: 0o644, target: null });

describe('ACTIONS: what carrying out each action involves (reconcile.ts)', () => {
  const every = Object.keys(ACTIONS) as ActionType[];

  it('has a row for every action the rule table can give', () => {
    for (const row of RULE_TABLE) for (const a of Object.values(row.actions)) expect(every).toContain(a);
  });

  it('takes the server lock for everything that may write the server, and only for that', () => {
    const writes = every.filter((a) => ACTIONS[a].writesRemote).sort();
    expect(writes).toEqual(['compare', 'conflict', 'delete-dir-if-empty-remote', 'delete-remote', 'push'].sort());
  });

  it('counts deletions of known paths, and nothing else, for the mass-delete check', () => {
    expect(every.filter((a) => ACTIONS[a].deletes).sort()).toEqual(['delete-local', 'delete-remote']);
  });

  it('never lets the next chunk be decided during a deletion, a rename or a forgetting', () => {
    for (const a of every)
      if (ACTIONS[a].deletes || ACTIONS[a].lane === 'aside' || a === 'forget') expect(ACTIONS[a].overlap).toBe('no');
  });

  it('holds back (N5) exactly what changes a side', () => {
    const changing = every.filter((a) => ACTIONS[a].changesSide);
    expect(changing).not.toContain('record');
    expect(changing).not.toContain('forget');
    expect(changing).not.toContain('compare');
    expect(changing).toEqual(expect.arrayContaining(['push', 'pull', 'conflict', 'keep-local-aside']));
  });
});

describe('firstSyncPass (F2, F3)', () => {
  const conflict = reconcile({
    path: 'a',
    base: null,
    local: file(1),
    remote: file(2),
    localChanged: true,
    remoteChanged: true,
    sameContent: false,
    direction: 'two-way',
  });

  it('leaves a merge (and a pair that has synced before) to the table', () => {
    expect(conflict.action).toBe('conflict');
    for (const mode of ['merge', undefined] as const)
      expect(firstSyncPass({ mode, direction: 'two-way', base: null, local: file(1), remote: file(2) }, conflict)).toBe(
        conflict,
      );
  });

  it("takes the server's copy (F2) or the local one (F3) instead of a conflict copy", () => {
    const i = { direction: 'two-way' as const, base: null, local: file(1), remote: file(2) };
    expect(firstSyncPass({ ...i, mode: 'take-server' }, conflict)).toMatchObject({ action: 'pull', rule: 'F2' });
    expect(firstSyncPass({ ...i, mode: 'take-local' }, conflict)).toMatchObject({ action: 'push', rule: 'F3' });
  });

  it('keeps a conflict between different kinds, and never pushes from a receive-only pair', () => {
    const dir: SideState = { kind: 'dir', size: 0, mtimeNs: 1n, mode: 0o755, target: null };
    expect(
      firstSyncPass({ mode: 'take-local', direction: 'two-way', base: null, local: file(1), remote: dir }, conflict),
    ).toBe(conflict);
    expect(
      firstSyncPass(
        { mode: 'take-local', direction: 'receive-only', base: null, local: file(1), remote: file(2) },
        conflict,
      ),
    ).toBe(conflict);
  });
});
