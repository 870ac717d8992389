#!/usr/bin/env node
// The CLI as `npm run build` bundles it (scripts/bundle-cli.mjs): one file for Node to load.
import { existsSync } from 'node:fs';

const bundle = new URL('../out/cli/lipsync.mjs', import.meta.url);
if (!existsSync(bundle)) {
  console.error('lipsync is not built here: run `npm run build` (in the lipsync folder) first.');
  process.exit(1);
}
const { main } = await import(bundle.href);
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
