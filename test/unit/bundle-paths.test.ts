/**
 * What the engine finds beside itself, from where it runs: compiled by tsc (out/electron/...)
 * or bundled with the CLI (out/cli/, scripts/bundle-cli.mjs): the built renderer and the
 * native helper.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultRendererDir } from '../../electron/engine/api/web-static.js';
import { nativeCandidates } from '../../electron/engine/native.js';

describe('defaultRendererDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'lipsync-paths-'));
  mkdirSync(join(root, 'out/renderer'), { recursive: true });
  writeFileSync(join(root, 'out/renderer/index.html'), '<!doctype html>');
  const from = (m: string): string => defaultRendererDir(pathToFileURL(join(root, m)).href);

  it('finds out/renderer from the tsc build', () => {
    expect(from('out/electron/engine/api/web-static.js')).toBe(join(root, 'out/renderer/'));
  });
  it('finds out/renderer from the CLI bundle', () => {
    expect(from('out/cli/web.mjs')).toBe(join(root, 'out/renderer/'));
  });
});

describe('nativeCandidates from the CLI bundle', () => {
  it('reaches out/native', () => {
    expect(nativeCandidates(pathToFileURL('/app/out/cli/lipsync.mjs').href, {})).toContain(
      '/app/out/native/malloc-trim.node',
    );
  });
});
