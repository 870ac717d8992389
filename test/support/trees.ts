/**
 * File-tree helpers shared by the rsync push and pull integration tests.
 */
import { expect } from 'vitest';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Writes `root/rel` (creating parents), optionally with an mtime. */
export async function put(root: string, rel: string, content: string | Buffer, mtime?: Date): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
  if (mtime) await utimes(p, mtime, mtime);
}

export const read = (root: string, rel: string) => readFileSync(join(root, rel), 'utf8');

/** Every path under root (files and dirs, relative, sorted), skipping .lipsync. */
export function tree(root: string, sub = ''): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(root, sub));
  } catch (e) {
    // A folder removed while it is listed (a sync still running): not in the snapshot.
    if (sub && (e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const name of names) {
    const rel = sub ? `${sub}/${name}` : name;
    if (rel === '.lipsync') continue;
    // Gone between the listing and the lstat (a deletion in progress): not in the snapshot.
    const st = lstatSync(join(root, rel), { throwIfNoEntry: false });
    if (!st) continue;
    out.push(st.isDirectory() ? `${rel}/` : rel);
    if (st.isDirectory()) out.push(...tree(root, rel));
  }
  return out.sort();
}

/**
 * File names that break naive quoting, escaping or normalisation; the last two
 * would create `pwned[0]` and `pwned[1]` if a shell ever ran them.
 */
export function strangeNames(pwned: readonly string[]): string[] {
  return [
    'sp ace',
    'new\nline',
    'tab\tx',
    'cr\rx',
    'back\\slash',
    'lit\\#012x',
    '-rf',
    '--help',
    '"dq"',
    "it's",
    '$HOME',
    '*',
    ' leading',
    'trailing ',
    '#hash',
    ';semi',
    '.hidden',
    '~tilde',
    'é'.repeat(100), // 200 bytes of UTF-8
    'caf\u00e9', // NFC
    'cafe\u0301', // NFD: a different name
    '漢字 🎉',
    `$(touch ${pwned[0]})`, // a nested path: "$(touch " / "tmp" / "lipsync-pwned-...)"
    `'; touch ${pwned[1]}; '`,
  ];
}

/** A root dir name that would create `pwned[2]` and `pwned[3]` if a shell ever ran it. */
export const strangeRootName = (pwned: readonly string[]) => `root 'q' "dq" $(touch ${pwned[2]}) \`touch ${pwned[3]}\``;

/** Both Unicode forms of "café" exist in `dir` as two entries, byte-exact. */
export function expectBothUnicodeForms(dir: string): void {
  const top = readdirSync(dir, { encoding: 'buffer' }).map((b) => b.toString('hex'));
  expect(top).toContain(Buffer.from('caf\u00e9').toString('hex'));
  expect(top).toContain(Buffer.from('cafe\u0301').toString('hex'));
}

/** The paths of the transferred items, without rsync's directory creations (itemize "c..."), sorted. */
export const transferredPaths = (items: readonly { path: string; itemize: string }[]): string[] =>
  items
    .filter((i) => !i.itemize.startsWith('c'))
    .map((i) => i.path)
    .sort();
