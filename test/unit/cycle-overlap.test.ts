import { describe, expect, it } from 'vitest';
import { overlapSafe } from '../../electron/engine/cycle/compare.js';
import type { Decision } from '../../electron/engine/reconcile.js';

type Kind = 'file' | 'dir' | 'symlink';
const side = (kind: Kind) => ({ kind }) as never;
const item = (action: Decision['action'], local: Kind | null, remote: Kind | null) => ({
  local: local ? side(local) : null,
  remote: remote ? side(remote) : null,
  decision: { action, rule: 'T', why: 'test' } as Decision,
});

describe('overlapSafe: may the next chunk be decided while this one is acted on?', () => {
  it.each([
    ['nothing to do', 'none', 'file', 'file', true],
    ['record both sides', 'record', 'file', 'file', true],
    ['push a new file', 'push', 'file', null, true],
    ['push a new folder', 'push', 'dir', null, true],
    ['push an update of a file', 'push', 'file', 'file', true],
    ['pull a new file', 'pull', null, 'file', true],
    ['pull an update', 'pull', 'symlink', 'symlink', true],
    ['push a deletion', 'push', null, 'file', false],
    ['pull a deletion', 'pull', 'dir', null, false],
    ['push a file over a server folder', 'push', 'file', 'dir', false],
    ['pull a folder over a local file', 'pull', 'file', 'dir', false],
    ['delete on the server', 'delete-remote', null, 'dir', false],
    ['delete here', 'delete-local', 'file', null, false],
    ['conflict (renames the local copy)', 'conflict', 'file', 'file', false],
    ['keep the local version aside', 'keep-local-aside', 'file', 'file', false],
    ['compare content (may become a conflict)', 'compare', 'file', 'file', false],
    ['forget base entries', 'forget', null, null, false],
  ] as const)('%s → %s', (_what, action, local, remote, safe) => {
    expect(overlapSafe([item(action, local, remote)])).toBe(safe);
    // One unsafe item makes the whole chunk unsafe; safe ones around it do not change that.
    expect(overlapSafe([item('push', 'file', null), item(action, local, remote), item('none', 'file', 'file')])).toBe(
      safe,
    );
  });

  it('an empty chunk is safe', () => {
    expect(overlapSafe([])).toBe(true);
  });
});
