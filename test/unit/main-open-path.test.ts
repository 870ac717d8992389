import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { handleOpenPath, isInsideRoot, rootHolding } from '../../electron/main/logic/open-path.js';

describe('isInsideRoot (pure)', () => {
  it('is true for the root itself and anything below it', () => {
    expect(isInsideRoot('/home/me/docs', '/home/me/docs')).toBe(true);
    expect(isInsideRoot('/home/me/docs/', '/home/me/docs')).toBe(true);
    expect(isInsideRoot('/home/me/docs/a/b.txt', '/home/me/docs')).toBe(true);
    expect(isInsideRoot('/home/me/docs/..notes', '/home/me/docs')).toBe(true);
    expect(isInsideRoot('/home/me/docs/a/../b', '/home/me/docs')).toBe(true);
  });

  it('is false outside, for a sibling sharing a prefix, for ../ escapes and for relative paths', () => {
    expect(isInsideRoot('/home/me', '/home/me/docs')).toBe(false);
    expect(isInsideRoot('/home/me/docs2/a', '/home/me/docs')).toBe(false);
    expect(isInsideRoot('/home/me/docs/../secret', '/home/me/docs')).toBe(false);
    expect(isInsideRoot('/etc/passwd', '/home/me/docs')).toBe(false);
    expect(isInsideRoot('docs/a', '/home/me/docs')).toBe(false);
    expect(isInsideRoot('/home/me/docs/a', 'docs')).toBe(false);
  });

  it('rootHolding names the pair root that holds a path', () => {
    const roots = ['/a/one', '/b/two'];
    expect(rootHolding('/b/two/x', roots)).toBe('/b/two');
    expect(rootHolding('/b/three/x', roots)).toBeNull();
  });
});

describe('handleOpenPath (main side of OPEN_PATH_CHANNEL)', () => {
  let dir: string;
  let root: string;
  const FILE = pathToFileURL('/app/renderer/index.html').href;
  const allowed = [FILE];

  beforeAll(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'lipsync-open-')));
    root = join(dir, 'docs');
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'sub', 'a.txt'), 'a');
    writeFileSync(join(dir, 'secret.txt'), 's');
    symlinkSync(join(dir, 'secret.txt'), join(root, 'escape'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const deps = (openErr = '') => ({
    roots: () => [root, join(dir, 'gone')],
    realpath: (p: string) => realpath(p),
    openPath: vi.fn(async (_p: string) => openErr),
    showItemInFolder: vi.fn((_p: string) => undefined),
  });

  it('opens a file inside a pair folder, absolute or relative to it', async () => {
    const d = deps();
    expect(await handleOpenPath(FILE, allowed, join(root, 'sub', 'a.txt'), d)).toEqual({ ok: true });
    expect(await handleOpenPath(FILE, allowed, 'sub', d)).toEqual({ ok: true });
    expect(d.openPath.mock.calls).toEqual([[join(root, 'sub', 'a.txt')], [join(root, 'sub')]]);
    expect(d.showItemInFolder).not.toHaveBeenCalled();
  });

  it('shows the file in its folder when no app opens it', async () => {
    const d = deps('no application');
    expect(await handleOpenPath(FILE, allowed, join(root, 'sub', 'a.txt'), d)).toEqual({ ok: true });
    expect(d.showItemInFolder).toHaveBeenCalledWith(join(root, 'sub', 'a.txt'));
  });

  it("mode 'show' only shows the file in its folder, with the same checks", async () => {
    const d = deps();
    expect(await handleOpenPath(FILE, allowed, join(root, 'sub', 'a.txt'), d, 'show')).toEqual({ ok: true });
    expect(d.showItemInFolder.mock.calls).toEqual([[join(root, 'sub', 'a.txt')]]);
    expect(d.openPath).not.toHaveBeenCalled();
    expect(await handleOpenPath(FILE, allowed, join(root, 'escape'), d, 'show')).toMatchObject({
      error: { kind: 'permission-denied' },
    });
    expect(d.showItemInFolder).toHaveBeenCalledTimes(1);
  });

  it('refuses paths outside every pair, ../ escapes, symlinks out, missing files, bad payloads and other senders', async () => {
    const d = deps();
    for (const p of [
      join(dir, 'secret.txt'),
      join(root, '..', 'secret.txt'),
      '../secret.txt',
      join(root, 'escape'),
      join(root, 'missing.txt'),
    ]) {
      const r = await handleOpenPath(FILE, allowed, p, d);
      expect(r, p).toMatchObject({ error: { kind: 'permission-denied' } });
    }
    for (const p of ['', 42, null, { path: root }, `${root}\0x`]) {
      expect(await handleOpenPath(FILE, allowed, p, d)).toMatchObject({ error: { kind: 'invalid-settings' } });
    }
    expect(await handleOpenPath('https://evil.example/', allowed, root, d)).toMatchObject({
      error: { kind: 'permission-denied' },
    });
    expect(await handleOpenPath(undefined, allowed, root, d)).toMatchObject({ error: { kind: 'permission-denied' } });
    expect(d.openPath).not.toHaveBeenCalled();
  });
});
