import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * `electron-vite build` → out/main/index.js (ESM; runtime deps such as better-sqlite3
 * stay external and ship in node_modules), out/preload/index.cjs (CommonJS: sandboxed
 * preloads cannot be ES modules; everything bundled, only `electron` external), and
 * out/renderer/ (the React app in renderer/, the same bundle `lipsync run --web` serves).
 */
export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      lib: { entry: resolve(root, 'electron/main/index.ts'), formats: ['es'] },
      rollupOptions: { output: { entryFileNames: 'index.js' } },
      sourcemap: true,
    },
  },
  preload: {
    build: {
      outDir: resolve(root, 'out/preload'),
      externalizeDeps: false,
      lib: { entry: resolve(root, 'electron/preload/index.ts'), formats: ['cjs'] },
      rollupOptions: { output: { format: 'cjs', entryFileNames: 'index.cjs' } },
      sourcemap: true,
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    base: './',
    plugins: [react()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      emptyOutDir: true,
      sourcemap: true,
      rollupOptions: { input: resolve(root, 'renderer/index.html') },
    },
  },
});
