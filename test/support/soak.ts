/**
 * Helpers for the convergence soak (issue 15): the op kinds it mixes into
 * its seeded stream (switchable by `LIPSYNC_SOAK_KINDS`), writers that write
 * one file in pieces over time (like a download, like a log), a guard so the
 * test's own operations never go through a symlink, and a readable account
 * of what changed in a sentinel folder (test/support/sentinel.ts says only
 * whether it changed).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { appendFile, open } from 'node:fs/promises';
import { join } from 'node:path';

/** Slow writers (pieces, log-open, log-reopen) and the hostile client's changes on the server (the rest). */
export const SOAK_KINDS = [
  'pieces',
  'log-open',
  'log-reopen',
  'dir-to-link',
  'link-to-dir',
  'file-to-link',
  'link-to-file',
] as const;
export type SoakKind = (typeof SOAK_KINDS)[number];

export const SOAK_GROUPS: Record<string, readonly SoakKind[]> = {
  all: SOAK_KINDS,
  none: [],
  slow: ['pieces', 'log-open', 'log-reopen'],
  hostile: ['dir-to-link', 'link-to-dir', 'file-to-link', 'link-to-file'],
};

/**
 * The enabled kinds from a spec like `all` (the default), `none`, `slow`,
 * `hostile,pieces` or `all,-link-to-dir`: comma-separated kind or group
 * names, applied left to right; a leading `-` removes. Throws on an unknown name.
 */
export function parseSoakKinds(spec: string | undefined): Set<SoakKind> {
  const out = new Set<SoakKind>();
  const words = (spec ?? 'all')
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  for (const w of words) {
    const remove = w.startsWith('-');
    const name = remove ? w.slice(1) : w;
    const kinds: readonly SoakKind[] | undefined =
      SOAK_GROUPS[name] ?? ((SOAK_KINDS as readonly string[]).includes(name) ? [name as SoakKind] : undefined);
    if (!kinds)
      throw new Error(
        `LIPSYNC_SOAK_KINDS: unknown name ${JSON.stringify(name)}; kinds: ${SOAK_KINDS.join(', ')}; groups: ${Object.keys(SOAK_GROUPS).join(', ')}`,
      );
    for (const k of kinds) {
      if (remove) out.delete(k);
      else out.add(k);
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Writes `content` to `abs` (created or truncated) like a download: one
 * open, pieces of `pieceSize` bytes each written and flushed to the disk
 * (fdatasync) with `pauseMs` between them, one close at the end.
 */
export async function writeInPieces(abs: string, content: Buffer, pieceSize: number, pauseMs: number): Promise<number> {
  const fh = await open(abs, 'w');
  let pieces = 0;
  try {
    for (let off = 0; off < content.length || pieces === 0; off += pieceSize) {
      if (pieces) await sleep(pauseMs);
      const piece = content.subarray(off, Math.min(content.length, off + pieceSize));
      for (let done = 0; done < piece.length;) done += (await fh.write(piece, done, piece.length - done)).bytesWritten;
      await fh.datasync();
      pieces++;
    }
  } finally {
    await fh.close();
  }
  return pieces;
}

/**
 * Appends `lines` to `abs` (O_APPEND, created if absent), one every
 * `intervalMs`: `open` keeps one descriptor open for the whole time and
 * closes it at the end; `reopen` opens, appends and closes for each line.
 */
export async function appendLines(
  abs: string,
  lines: string[],
  intervalMs: number,
  style: 'open' | 'reopen',
): Promise<void> {
  if (style === 'reopen') {
    for (let i = 0; i < lines.length; i++) {
      if (i) await sleep(intervalMs);
      await appendFile(abs, lines[i]!, { flag: 'a' });
    }
    return;
  }
  const fh = await open(abs, 'a');
  try {
    for (let i = 0; i < lines.length; i++) {
      if (i) await sleep(intervalMs);
      const b = Buffer.from(lines[i]!);
      for (let done = 0; done < b.length;) done += (await fh.write(b, done, b.length - done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

/**
 * The first prefix of `rel` (a component path below `root`, itself
 * included) that is a symlink, or undefined. The test's own operations skip
 * such paths: going through a link the hostile client planted would change
 * what is outside the roots, and that must be the engine's doing or nobody's.
 */
export function linkOnPath(root: string, rel: string): string | undefined {
  const parts = rel.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join('/');
    try {
      if (lstatSync(join(root, p)).isSymbolicLink()) return p;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Whether anything (a dangling link included) is at `abs`. */
export function present(abs: string): boolean {
  try {
    lstatSync(abs);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every entry below `dir` → its kind, size, mode, mtime and ctime (ns),
 * inode, and content hash or link target: the fields sentinelDigest hashes.
 */
export function entriesOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(join(dir, rel)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const abs = join(dir, p);
      try {
        const st = lstatSync(abs, { bigint: true });
        const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
        const what =
          kind === 'file'
            ? `sha256 ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}`
            : kind === 'link'
              ? `-> ${readlinkSync(abs)}`
              : '';
        out.set(
          p,
          `${kind} size=${st.size} mode=${st.mode.toString(8)} mtime=${st.mtimeNs} ctime=${st.ctimeNs} ino=${st.ino} ${what}`.trim(),
        );
        if (kind === 'dir') walk(p);
      } catch {
        // Removed while we looked: absent below.
      }
    }
  };
  walk('');
  return out;
}

/** What differs between two entriesOf() results, one line per path. */
export function entryChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const p of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(p);
    const a = after.get(p);
    if (b === a) continue;
    if (b === undefined) lines.push(`${p}: ADDED (${a})`);
    else if (a === undefined) lines.push(`${p}: REMOVED (was ${b})`);
    else lines.push(`${p}: CHANGED from (${b}) to (${a})`);
  }
  return lines;
}
