/**
 * A file that does not fit on the receiving disk (docs/sync-semantics.md,
 * "Pausing, errors, degraded"). rsync gives up the whole run when a write finds
 * the disk full, leaving what it wrote of that file in `.lipsync/partial`. Here:
 * that partial is removed (it only takes the space the other files need), and
 * the warning names the file, its size and the free space, so the user knows
 * how much to free. The pair then holds the file back (retry.ts) so that the
 * rest keeps syncing, and tries it again on a back-off.
 */
import { lstatSync, rmSync, statfsSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import type { ErrorInfo } from '../../shared/errors.js';
import type { RemoteSpec, SshOptions } from './types.js';
import { shQuote } from './remote/ssh.js';
import { runScript } from './remote/script.js';
import { PARTIAL_DIR, TRASH_DIR, isMetaPath } from '../../shared/layout.js';
import { formatBytes } from '../../shared/format.js';

/** The file names a disk-full error says could not be written (null when it names none: a whole-pair error). */
export function unfitFiles(e: ErrorInfo): string[] | null {
  if (e.kind !== 'disk-full' || !e.files?.length) return null;
  const files = e.files
    .map((f) => (f.startsWith(`${PARTIAL_DIR}/`) ? f.slice(PARTIAL_DIR.length + 1) : f))
    .filter((f) => f !== '' && !f.startsWith('/') && !isMetaPath(f));
  return files.length ? [...new Set(files)] : null;
}

/** Where the disk that is full is: this computer (a pull) or the server (a push). */
export function fullSide(e: ErrorInfo, localRoot: string): 'local' | 'remote' {
  return e.message.includes(resolve(localRoot)) ? 'local' : 'remote';
}

interface SpaceReport {
  /** Bytes of the file on the sending side, when known. */
  size: number | null;
  /** Bytes free on the receiving disk, when known. */
  free: number | null;
}

/** Removes the partial of each file on the receiving side and measures the files and the free space. */
export async function clearPartials(o: {
  side: 'local' | 'remote';
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  files: string[];
}): Promise<Map<string, SpaceReport>> {
  const out = new Map<string, SpaceReport>();
  const partials = (f: string) => [`${PARTIAL_DIR}/${posix.basename(f)}`, `${PARTIAL_DIR}/${f}`];
  const localSize = (f: string): number | null => {
    try {
      return lstatSync(join(o.localRoot, f)).size;
    } catch {
      return null;
    }
  };
  const localFree = (root: string): number | null => {
    try {
      const s = statfsSync(root);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return null;
    }
  };
  const receiverIsLocalFs = o.side === 'local' || o.remote.kind === 'local';
  if (receiverIsLocalFs) {
    const root = o.side === 'local' ? o.localRoot : o.remote.path;
    for (const f of o.files) for (const p of partials(f)) rmSync(join(root, p), { force: true });
    const free = localFree(root);
    for (const f of o.files) {
      // The sender's copy: here for a push, on the server (same machine) for a pull.
      const size = o.side === 'remote' ? localSize(f) : statSize(join(o.remote.path, f));
      out.set(f, { size, free });
    }
    return out;
  }
  if (o.remote.kind !== 'ssh') return out;
  // One ssh session: remove the partials, print each file's size on the server, then the free space.
  const script = [
    `cd ${shQuote(o.remote.path)} || exit 3`,
    ...o.files.map((f) => `rm -f -- ${partials(f).map(shQuote).join(' ')}`),
    ...o.files.map((f) => `echo "size $(wc -c < ${shQuote(f)} 2>/dev/null)"`),
    `df -Pk . | tail -n 1`,
  ].join('\n');
  const r = await runScript(o.remote, o.ssh, script, { timeoutMs: 30_000 }).catch(() => null);
  const lines = r?.code === 0 ? r.stdout.split('\n') : [];
  const avail = Number(lines.at(-2)?.trim().split(/\s+/)[3]);
  const free = Number.isFinite(avail) ? avail * 1024 : null;
  o.files.forEach((f, i) => {
    const size = o.side === 'remote' ? localSize(f) : Number(/^size (\d+)/.exec(lines[i] ?? '')?.[1] ?? NaN);
    out.set(f, { size: Number.isFinite(size) ? size : null, free });
  });
  return out;
}

function statSize(p: string): number | null {
  try {
    return lstatSync(p).size;
  } catch {
    return null;
  }
}

/** The per-file warning: the file, its size, the free space, what to free. */
export function unfitWarning(
  path: string,
  space: SpaceReport | undefined,
  where: { side: 'local' | 'remote'; localRoot: string; remote: RemoteSpec },
): ErrorInfo {
  const root = where.side === 'local' ? resolve(where.localRoot) : where.remote.path;
  const host =
    where.side === 'local' ? 'this computer' : where.remote.kind === 'ssh' ? where.remote.host : 'the server';
  const size = space?.size ?? null;
  const free = space?.free ?? null;
  const needs = size !== null ? ` (${formatBytes(size)})` : '';
  const has = free !== null ? ` (${formatBytes(free)} free)` : '';
  const toFree = size !== null && free !== null && size > free ? `at least ${formatBytes(size - free)}` : 'some space';
  return {
    kind: 'disk-full',
    message: `${path}${needs} does not fit on ${host}: the disk holding ${root} is full${has}.`,
    fix: `Free ${toFree} on that disk (${posix.join(root, TRASH_DIR)} holds replaced and deleted files you may remove). lipsync tries this file again by itself; the other files keep syncing.`,
    files: [path],
  };
}
