// The engine has no import cycles (scripts/check-cycles.mjs, also run by `npm run lint`).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const check = (...dirs: string[]) =>
  spawnSync(process.execPath, [join(root, 'scripts', 'check-cycles.mjs'), ...dirs], { cwd: root, encoding: 'utf8' });

describe('import cycles', () => {
  it('electron/engine has none', () => {
    const r = check();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('finds one, and ignores type-only imports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-cycles-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = () => b;\n");
      writeFileSync(join(dir, 'b.ts'), "import { c } from './c.js';\nexport const b = c;\n");
      writeFileSync(
        join(dir, 'c.ts'),
        "import type { T } from './d.js';\nimport { a } from './a.js';\nexport const c = a as unknown as T;\n",
      );
      writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport type T = typeof c;\n");
      const r = check(dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/import cycle: .*a\.ts -> .*b\.ts -> .*c\.ts -> .*a\.ts/);
      expect(r.stderr).toContain('1 import cycle ');
      expect(r.stderr).not.toMatch(/d\.ts/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
