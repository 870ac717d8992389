/**
 * Rule N5 (docs/sync-semantics.md) for the server-side operations, on a local-path
 * remote and over the harness sshd: renames refuse a source, target or trash path
 * below a symlinked folder; statRemote calls such a path absent (GNU find and the
 * rsync listing); transfers, the lock and the trash purge refuse a planted link in
 * .lipsync. A sentinel folder outside the root is the links' target and must not change.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REMOTE_KINDS, useRemote } from '../support/remotes.js';
import { makeSentinel, sentinelIntact } from '../support/sentinel.js';
import { remoteOps } from '../../electron/engine/remote/ops.js';
import { statRemote } from '../../electron/engine/remote/stat.js';
import { LipsyncError } from '../../electron/engine/errors.js';

describe.each(REMOTE_KINDS)('N5 on a %s remote', (kind) => {
  const fx = useRemote(kind, { tempPrefix: 'lipsync-symops' });

  /** A root with real/a.txt, link -> sentinel, and its .lipsync folders. */
  function setup() {
    const root = join(fx.base, `t${fx.next()}`);
    mkdirSync(join(root, 'real'), { recursive: true });
    mkdirSync(join(root, '.lipsync', 'trash'), { recursive: true });
    writeFileSync(join(root, 'real', 'a.txt'), 'a');
    const s = makeSentinel();
    symlinkSync(s.dir, join(root, 'link'));
    return { root, s, ops: remoteOps(fx.spec(root), fx.ssh) };
  }

  it('renames refuse a source, target or trash path below a symlinked folder', async () => {
    const { root, s, ops } = setup();
    const res = await ops.rename(
      [
        { from: 'link/notes.txt', to: 'real/stolen.txt' },
        { from: 'real/a.txt', to: 'link/a.txt' },
        { from: 'real/a.txt', to: 'link/new/a.txt' },
      ],
      '.lipsync/trash/T',
    );
    expect(res.map((r) => r.ok)).toEqual([false, false, false]);
    for (const r of res) expect(r.reason).toMatch(/symlink/);
    expect(existsSync(join(root, 'real', 'stolen.txt'))).toBe(false);
    expect(readFileSync(join(root, 'real', 'a.txt'), 'utf8')).toBe('a');
    // A trash that would go through a link: the target's old version is not moved out.
    writeFileSync(join(root, 'real', 'b.txt'), 'b');
    mkdirSync(join(root, '.lipsync', 'trash', 'U'), { recursive: true });
    symlinkSync(s.dir, join(root, '.lipsync', 'trash', 'U', 'real'));
    const [t] = await ops.rename([{ from: 'real/a.txt', to: 'real/b.txt' }], '.lipsync/trash/U');
    expect(t?.ok).toBe(false);
    expect(readFileSync(join(root, 'real', 'b.txt'), 'utf8')).toBe('b');
    // Plain moves still work.
    const [ok] = await ops.rename([{ from: 'real/a.txt', to: 'moved/a.txt' }], '.lipsync/trash/T');
    expect(ok?.ok).toBe(true);
    expect(sentinelIntact(s)).toBe(true);
    await ops.close();
  });

  // An ssh remote has two stat backends (GNU find, rsync's listing); a local path has one.
  it.each(kind === 'ssh' ? [true, false] : [true])(
    'statRemote (find: %s) calls a path below a symlinked folder absent',
    async (gnuFind) => {
      const { root, s } = setup();
      const above = new Map();
      const st = await statRemote(
        fx.spec(root),
        fx.ssh,
        root,
        ['link/notes.txt', 'link/sub/deep.txt', 'real/a.txt', 'link'],
        { inotifywait: false, gnuFind },
        above,
      );
      expect(st.map((x) => x?.kind ?? null)).toEqual([null, null, 'file', 'symlink']);
      expect(above.get('link')?.kind).toBe('symlink');
      expect(sentinelIntact(s)).toBe(true);
    },
  );

  it('a planted link in .lipsync stops transfers, the lock and the purge with a clear error', async () => {
    const { root, s, ops } = setup();
    rmSync(join(root, '.lipsync', 'trash'), { recursive: true });
    symlinkSync(s.dir, join(root, '.lipsync', 'trash'));
    for (const op of [() => ops.prepareMeta(), () => ops.lock('me', 60_000), () => ops.purgeTrash(0)]) {
      const e = await op().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(LipsyncError);
      expect((e as LipsyncError).kind).toBe('remote-not-dir');
      expect((e as LipsyncError).message).toMatch(/\.lipsync\/trash.* is a symlink or a file/);
      expect((e as LipsyncError).fix).toMatch(/Remove that symlink/);
    }
    expect(existsSync(join(s.dir, 'lock'))).toBe(false);
    expect(sentinelIntact(s)).toBe(true);
    // Removed: everything works again.
    rmSync(join(root, '.lipsync', 'trash'));
    await ops.prepareMeta();
    expect((await ops.lock('me', 60_000)).acquired).toBe(true);
    await ops.close();
  });
});
