/**
 * The first sync of a new pair (docs/sync-semantics.md, "First sync", F1–F3): merge keeps
 * both versions of a file that differs, take-server and take-local replace one side's
 * version (kept in that side's .lipsync/trash), and `previewInitialSync` counts what the
 * first sync would find. Real sshd, the engine in-process, one-shot syncs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { makeCliEnv } from '../support/cli.js';
import { Engine } from '../../electron/engine/engine.js';
import type { InitialSyncMode } from '../../shared/api.js';

let server: SshServer;

beforeAll(async () => {
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

interface Setup {
  engine: Engine;
  local: string;
  remote: string;
  remoteSpec: string;
}

/** Both folders already hold files: one the same, one different (size), one different (same size), one each alone. */
function setup(): Setup & { dir: string } {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile });
  const local = join(e.dir, 'local');
  const remote = join(e.dir, 'server');
  mkdirSync(join(local, 'sub'), { recursive: true });
  mkdirSync(join(remote, 'sub'), { recursive: true });
  const old = new Date('2024-01-02T03:04:05Z');
  for (const root of [local, remote]) {
    writeFileSync(join(root, 'same.txt'), 'same content');
    utimesSync(join(root, 'same.txt'), old, old);
  }
  writeFileSync(join(local, 'notes.txt'), 'local notes, longer');
  writeFileSync(join(remote, 'notes.txt'), 'server notes');
  writeFileSync(join(local, 'sub', 'equal-size.txt'), 'LOCAL');
  writeFileSync(join(remote, 'sub', 'equal-size.txt'), 'SERVR');
  utimesSync(join(remote, 'sub', 'equal-size.txt'), old, old);
  writeFileSync(join(local, 'local-only.txt'), 'l');
  writeFileSync(join(local, 'sub', 'local-only-2.txt'), 'l2');
  writeFileSync(join(remote, 'server-only.txt'), 'r');
  const engine = new Engine({ dirs: { configDir: e.configDir, dataDir: e.dataDir }, watch: false });
  return { engine, local, remote, remoteSpec: `${server.alias}:${remote}`, dir: e.dir };
}

async function addAndSync(s: Setup, initialSync?: InitialSyncMode): Promise<void> {
  await s.engine.add({ local: s.local, remote: s.remoteSpec, id: 'docs', ...(initialSync ? { initialSync } : {}) });
  const [r] = await s.engine.sync('docs');
  expect(r?.ok, JSON.stringify(r?.error)).toBe(true);
}

/** Files below `root/.lipsync/trash`, as trash-relative path (after DATE/TIME) → content. */
function trashFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const trash = join(root, '.lipsync', 'trash');
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else out.set(relative(trash, p).split('/').slice(2).join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(trash);
  return out;
}

const conflictCopies = (dir: string) => readdirSync(dir).filter((n) => n.includes('conflicted copy'));

describe('initial sync modes', () => {
  it('previewInitialSync counts what the first sync would find', async () => {
    const s = setup();
    try {
      const p = await s.engine.previewInitialSync({ local: s.local, remote: s.remoteSpec });
      expect(p).toEqual({ localOnly: 2, remoteOnly: 1, different: 2, same: 1, truncated: false });
      // A remote folder that does not exist yet holds nothing; nor does a missing local one.
      const empty = await s.engine.previewInitialSync({
        local: join(s.dir, 'nope'),
        remote: `${server.alias}:${join(s.dir, 'nowhere')}`,
      });
      expect(empty).toEqual({ localOnly: 0, remoteOnly: 0, different: 0, same: 0, truncated: false });
    } finally {
      await s.engine.stop();
    }
  });

  it('identical content with another mtime is "same" in the preview, and the first sync makes no copy of it', async () => {
    const s = setup();
    try {
      for (const root of [s.local, s.remote]) writeFileSync(join(root, 'touched.txt'), 'equal bytes');
      const older = new Date('2023-05-06T07:08:09Z');
      utimesSync(join(s.remote, 'touched.txt'), older, older);
      const p = await s.engine.previewInitialSync({ local: s.local, remote: s.remoteSpec });
      expect(p).toEqual({ localOnly: 2, remoteOnly: 1, different: 2, same: 2, truncated: false });
      await addAndSync(s);
      // What the preview promised: one conflict copy per "different" file, none of touched.txt.
      const copies = [...conflictCopies(s.local), ...conflictCopies(join(s.local, 'sub'))];
      expect(copies).toHaveLength(p.different);
      expect(copies.some((n) => n.startsWith('touched'))).toBe(false);
      expect((await s.engine.conflicts('docs')).length).toBe(p.different);
    } finally {
      await s.engine.stop();
    }
  });

  it('merge (default): the union, a conflict copy of each file that differs, nothing replaced', async () => {
    const s = setup();
    try {
      await addAndSync(s);
      expect(readFileSync(join(s.local, 'notes.txt'), 'utf8')).toBe('server notes');
      expect(conflictCopies(s.local)).toHaveLength(1);
      expect(readFileSync(join(s.local, conflictCopies(s.local)[0]!), 'utf8')).toBe('local notes, longer');
      expect(conflictCopies(s.remote)).toHaveLength(1);
      expect(conflictCopies(join(s.local, 'sub'))).toHaveLength(1);
      expect(readFileSync(join(s.local, 'server-only.txt'), 'utf8')).toBe('r');
      expect(readFileSync(join(s.remote, 'local-only.txt'), 'utf8')).toBe('l');
      expect(trashFiles(s.local).size).toBe(0);
      expect(trashFiles(s.remote).size).toBe(0);
      expect((await s.engine.conflicts('docs')).length).toBe(2);
    } finally {
      await s.engine.stop();
    }
  });

  it("take-server: the server's version wins, this computer's goes to the local trash, no copy", async () => {
    const s = setup();
    try {
      await addAndSync(s, 'take-server');
      for (const root of [s.local, s.remote]) {
        expect(readFileSync(join(root, 'notes.txt'), 'utf8')).toBe('server notes');
        expect(readFileSync(join(root, 'sub', 'equal-size.txt'), 'utf8')).toBe('SERVR');
        expect(readFileSync(join(root, 'local-only.txt'), 'utf8')).toBe('l');
        expect(readFileSync(join(root, 'server-only.txt'), 'utf8')).toBe('r');
        expect(conflictCopies(root)).toEqual([]);
        expect(conflictCopies(join(root, 'sub'))).toEqual([]);
      }
      const trash = trashFiles(s.local);
      expect(trash.get('notes.txt')).toBe('local notes, longer');
      expect(trash.get('sub/equal-size.txt')).toBe('LOCAL');
      expect(trashFiles(s.remote).size).toBe(0);
      expect(await s.engine.conflicts('docs')).toEqual([]);

      // Only the first sync: later, a file created differently on both sides is a conflict again.
      writeFileSync(join(s.local, 'later.txt'), 'local later, longer');
      writeFileSync(join(s.remote, 'later.txt'), 'server later');
      await s.engine.sync('docs');
      expect(conflictCopies(s.local)).toHaveLength(1);
    } finally {
      await s.engine.stop();
    }
  });

  it("take-local: this computer's version wins, the server's goes to the server trash, no copy", async () => {
    const s = setup();
    try {
      await addAndSync(s, 'take-local');
      for (const root of [s.local, s.remote]) {
        expect(readFileSync(join(root, 'notes.txt'), 'utf8')).toBe('local notes, longer');
        expect(readFileSync(join(root, 'sub', 'equal-size.txt'), 'utf8')).toBe('LOCAL');
        expect(readFileSync(join(root, 'server-only.txt'), 'utf8')).toBe('r');
        expect(readFileSync(join(root, 'sub', 'local-only-2.txt'), 'utf8')).toBe('l2');
        expect(conflictCopies(root)).toEqual([]);
      }
      const trash = trashFiles(s.remote);
      expect(trash.get('notes.txt')).toBe('server notes');
      expect(trash.get('sub/equal-size.txt')).toBe('SERVR');
      expect(trashFiles(s.local).size).toBe(0);
      expect(await s.engine.conflicts('docs')).toEqual([]);
    } finally {
      await s.engine.stop();
    }
  });
});
