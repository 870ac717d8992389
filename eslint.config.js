import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['fs', 'path', 'child_process', 'os', 'net', 'http', 'crypto', 'stream', 'util', 'events', 'url'];

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'test-results/**', 'bench/results/**', 'bench/cache/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The renderer runs in a browser (or Electron's sandboxed renderer): DOM globals, no Node.
    files: ['renderer/src/**', 'test/renderer/**'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        localStorage: 'readonly',
        fetch: 'readonly',
        WebSocket: 'readonly',
        Response: 'readonly',
        URLSearchParams: 'readonly',
        HTMLElement: 'readonly',
        HTMLInputElement: 'readonly',
        MessageEvent: 'readonly',
      },
    },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'The renderer talks to the engine only through the bridge.' }],
          patterns: [{ group: ['node:*', ...nodeBuiltins], message: 'The renderer must not import Node modules.' }],
        },
      ],
    },
  },
  {
    // The engine and the CLI run in plain Node: they must never import Electron.
    files: ['electron/engine/**', 'electron/cli/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'electron', message: 'The engine runs in plain Node: never import electron here.' }] }],
    },
  },
  {
    // shared/ is the contract between engine and UI: no Node, no DOM, no Electron.
    files: ['shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'shared/ must not import electron.' }],
          patterns: [{ group: ['node:*', ...nodeBuiltins], message: 'shared/ must not import Node modules.' }],
        },
      ],
    },
  },
  {
    // The Electron main process imports Electron (and electron-store) only through its one
    // seam, electron/main/electron-seam.ts, which is what unit tests mock.
    files: ['electron/main/**'],
    ignores: ['electron/main/electron-seam.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'Import Electron through electron/main/electron-seam.ts.' },
            { name: 'electron-store', message: 'Import electron-store through electron/main/electron-seam.ts.' },
          ],
        },
      ],
    },
  },
  {
    // The shell's pure logic and the engine host are plain Node, unit-tested without Electron.
    files: ['electron/main/logic/**', 'electron/main/engine-host.ts', 'electron/preload/bridge.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'electron', message: 'Plain logic: no Electron here.' },
            { name: 'electron-store', message: 'Plain logic: no Electron here.' },
          ],
          patterns: [{ group: ['**/electron-seam*'], message: 'Plain logic: no Electron here.' }],
        },
      ],
    },
  },
);
