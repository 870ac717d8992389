// rsync compression (issue 18 §1) over the harness sshd: a push with -z arrives intact and
// sends fewer bytes than without for compressible text; zlib (what -z means with a peer
// older than 3.2, which has no negotiation) and a server whose rsync lacks zstd and lz4
// (it negotiates zlibx) work too.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useRemote } from '../support/remotes.js';
import { tree } from '../support/trees.js';
import { rsyncPush, rsyncPushTrees } from '../../electron/engine/remote/rsync.js';
import { rsyncPushArgs } from '../../electron/engine/remote/rsync-args.js';
import type { RemoteSpec } from '../../electron/engine/types.js';

/** ~1 MB of source-like text: compresses several times over. */
function sourceText(lines = 20_000): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++)
    out.push(`export function handler${i % 97}(input: Item[], limit = ${i}): Result {  // line ${i}`);
  return out.join('\n') + '\n';
}

describe('rsync -z over ssh', () => {
  const fx = useRemote('ssh', { tempPrefix: 'lipsync-compress' });

  async function pair(): Promise<{ local: string; dst: string; remote: RemoteSpec }> {
    const n = fx.next();
    const local = join(fx.base, `local-${n}`);
    const dst = join(fx.base, `r${n}`);
    await mkdir(local, { recursive: true });
    await mkdir(dst, { recursive: true });
    return { local, dst, remote: fx.spec(dst) };
  }

  /** rsync run with the push's own arguments (plus `extra` before them); its --stats "Total bytes sent". */
  function bytesSent(local: string, remote: RemoteSpec, compress: boolean, extra: string[] = []) {
    // The meta dirs rsyncPush would make first (temp, partial).
    for (const d of ['.lipsync/partial', '.lipsync/trash']) mkdirSync(join(remote.path, d), { recursive: true });
    const args = rsyncPushArgs({ localRoot: local, remote, ssh: fx.ssh, trashDir: '.lipsync/trash/T', compress });
    const r = spawnSync('rsync', [...extra, '--debug=nstr', ...args], {
      input: './code.ts\0',
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const m = /Total bytes sent: ([\d,.]+)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    return { sent: Number(m![1]!.replace(/[,.]/g, '')), out: r.stdout + r.stderr };
  }

  it('a push and a folder push with compression arrive intact', async () => {
    const { local, dst, remote } = await pair();
    const text = sourceText();
    await writeFile(join(local, 'code.ts'), text);
    await mkdir(join(local, 'src/deep'), { recursive: true });
    await writeFile(join(local, 'src/deep/b.ts'), text.slice(0, 5000));
    const r = await rsyncPush({
      localRoot: local,
      remote,
      ssh: fx.ssh,
      paths: ['code.ts'],
      trashDir: '.lipsync/trash/T',
      compress: true,
    });
    expect(r.error).toBeUndefined();
    expect(readFileSync(join(dst, 'code.ts'), 'utf8')).toBe(text);
    // Literal data counts the file's bytes before compression.
    expect(r.literalBytes).toBe(Buffer.byteLength(text));
    await mkdir(join(dst, '.lipsync/incoming'), { recursive: true });
    const t = await rsyncPushTrees({
      localRoot: local,
      remote,
      ssh: fx.ssh,
      paths: ['src'],
      stagingDir: '.lipsync/incoming/p1',
      excludes: [],
      compress: true,
    });
    expect(t.error).toBeUndefined();
    expect(readFileSync(join(dst, '.lipsync/incoming/p1/src/deep/b.ts'), 'utf8')).toBe(text.slice(0, 5000));
  });

  it('sends a fraction of the bytes for text: zstd, or zlib as with an old peer, or zlibx from a server without zstd', async () => {
    const text = sourceText();
    const plain = await pair();
    await writeFile(join(plain.local, 'code.ts'), text);
    const off = bytesSent(plain.local, plain.remote, false);
    expect(off.sent).toBeGreaterThan(text.length);

    const on = await pair();
    await writeFile(join(on.local, 'code.ts'), text);
    const z = bytesSent(on.local, on.remote, true);
    expect(z.sent).toBeLessThan(off.sent / 4);
    expect(readFileSync(join(on.dst, 'code.ts'), 'utf8')).toBe(text);

    expect(z.out).toMatch(/negotiated compress: zstd/);

    // With an rsync older than 3.2 (no negotiation) -z means zlib: the same stream as here.
    const old = await pair();
    await writeFile(join(old.local, 'code.ts'), text);
    const zo = bytesSent(old.local, old.remote, true, ['--compress-choice=zlib']);
    expect(zo.out).toMatch(/compress: zlib\b/);
    expect(zo.sent).toBeLessThan(off.sent / 4);
    expect(readFileSync(join(old.dst, 'code.ts'), 'utf8')).toBe(text);

    // A server whose rsync has neither zstd nor lz4 (its list: zlibx zlib).
    const noz = await pair();
    await writeFile(join(noz.local, 'code.ts'), text);
    const zn = bytesSent(noz.local, noz.remote, true, ["--rsync-path=env RSYNC_COMPRESS_LIST='zlibx zlib' rsync"]);
    expect(zn.out).toMatch(/negotiated compress: zlibx/);
    expect(zn.sent).toBeLessThan(off.sent / 4);
    expect(tree(noz.dst).filter((p) => !p.startsWith('.lipsync'))).toEqual(['code.ts']);
  });
});
