import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const renderer = fileURLToPath(new URL('../../renderer/', import.meta.url));

describe('web UI page', () => {
  it('links a favicon that the build copies next to index.html (public/)', () => {
    const html = readFileSync(`${renderer}index.html`, 'utf8');
    const link = /<link\b[^>]*\brel="icon"[^>]*>/.exec(html)?.[0] ?? '';
    expect(link).not.toBe('');
    const href = /\bhref="([^"]*)"/.exec(link)?.[1] ?? '';
    // Relative, so it works under the web server's root and from file:// alike.
    expect(href).toBe('./favicon.png');
    const png = readFileSync(`${renderer}public/${href.slice(2)}`);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(link).toContain('type="image/png"');
  });
});
