/**
 * The engine's native helper, out/native/malloc-trim.node (electron/native/malloc-trim.c, built
 * by scripts/build-native.mjs): glibc's malloc_trim(0). Optional: where it was not built
 * (no C compiler) or cannot load (not glibc), `mallocTrim()` is null and nothing else changes.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const FILE = 'malloc-trim.node';

/**
 * Where the helper may be, next to this module's build: out/electron/engine/native.js (the CLI and
 * daemon), out/main/index.js (the app's bundled main process) and electron/engine/native.ts (tests
 * run from the sources) all reach out/native/.
 * `LIPSYNC_NATIVE_DIR` overrides (an empty value turns the helper off).
 */
export function nativeCandidates(moduleUrl = import.meta.url, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.LIPSYNC_NATIVE_DIR !== undefined)
    return env.LIPSYNC_NATIVE_DIR ? [path.join(env.LIPSYNC_NATIVE_DIR, FILE)] : [];
  const here = path.dirname(fileURLToPath(moduleUrl));
  const out = [
    path.resolve(here, '../../native', FILE),
    path.resolve(here, '../native', FILE),
    path.resolve(here, '../../out/native', FILE),
  ];
  // In a packaged app the .node file is unpacked beside the asar archive (electron-builder.yml).
  return [...out, ...out.filter((p) => p.includes('app.asar')).map((p) => p.replace('app.asar', 'app.asar.unpacked'))];
}

let loaded: (() => boolean) | null | undefined;

/** malloc_trim(0) from the helper (returns whether memory went back to the system), or null without it. */
export function mallocTrim(): (() => boolean) | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const require = createRequire(import.meta.url);
  for (const file of nativeCandidates()) {
    if (!existsSync(file)) continue;
    try {
      const mod = require(file) as { trim?: unknown };
      if (typeof mod.trim === 'function') {
        loaded = mod.trim as () => boolean;
        break;
      }
    } catch {
      // Built for another libc or machine: carry on without it.
    }
  }
  return loaded;
}
