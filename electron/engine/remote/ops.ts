/**
 * Operations on the remote root that rsync cannot do (probe, create, rename,
 * the pair marker), for both kinds of remote:
 * - ssh: ONE sshExec() per call, a fixed POSIX sh script in which every path
 *   is shQuote()d (see ssh.ts for why the script travels on stdin);
 * - local: node:fs.
 * Failures (unreachable, auth, permissions) become LipsyncError.
 */

import { constants as fsConstants } from 'node:fs';
import { access, lstat, mkdir, readFile, rename as fsRename, rm, stat, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, type FailureContext } from '../errors.js';
import { closeMaster, shQuote, sshExec } from './ssh.js';
import { rsyncVersion as localRsyncVersion, parseRsyncVersion } from './rsync.js';
import type { RunResult } from '../proc/run.js';

export const META_DIR = '.lipsync';
export const MARKER_FILE = `${META_DIR}/pair-id`;

export type RootState = 'dir' | 'missing' | 'not-dir' | 'no-access';

export interface MoveResult {
  from: string;
  to: string;
  ok: boolean;
  /** 'missing' when `from` does not exist; otherwise the error text. */
  reason?: string;
}

export interface RemoteOps {
  /** rsync's version on the remote side (null if rsync is not on its PATH) and what the root is. */
  probe(): Promise<{ rsyncVersion: string | null; root: RootState }>;
  /** mkdir -p root. */
  createRoot(): Promise<void>;
  /** mkdir -p root/.lipsync/{partial,tmp,trash}; the root itself must exist ('remote-missing' otherwise). */
  prepareMeta(): Promise<void>;
  /**
   * Renames inside the root, in order. For each move: if `to` exists it is
   * first moved to trashDir/<to> (a '.1', '.2'... suffix if that is taken);
   * the parent of `to` is created; then `from` is moved to `to`. A `from`
   * that does not exist gives ok:false, reason 'missing'. Paths are relative
   * to the root; trashDir too.
   */
  rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]>;
  /** The pair id in root/.lipsync/pair-id, or null when there is none. */
  readMarker(): Promise<string | null>;
  /** Writes root/.lipsync/pair-id (atomically); the root must exist. */
  writeMarker(pairId: string): Promise<void>;
  /** Ends the shared ssh connection (no-op for a local remote). */
  close(): Promise<void>;
}

/**
 * Checks and normalises a path relative to the root: not empty, not absolute,
 * no '.' or '..' component, no NUL. Trailing and doubled slashes are dropped.
 */
export function normalizeRelPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '');
  if (p.includes('\0') || p.startsWith('/') || parts.length === 0 || parts.some((x) => x === '.' || x === '..')) {
    throw new LipsyncError('unknown', `Invalid relative path ${JSON.stringify(p)}.`, {
      detail: 'paths inside a pair must be relative, without . or .. components',
    });
  }
  return parts.join('/');
}

function join(root: string, rel: string): string {
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

export function remoteOps(remote: RemoteSpec, ssh: SshOptions): RemoteOps {
  return remote.kind === 'local' ? new LocalOps(remote.path) : new SshOps(remote, ssh);
}

// ---------------------------------------------------------------------------
// Local

function fsError(e: unknown, path: string, what: string): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  const detail = `${what}: ${(e as Error).message}`;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new LipsyncError('permission-denied', `No permission to ${what} ${path}.`, {
        fix: `Check that your user can write ${path}.`,
        detail,
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new LipsyncError('disk-full', `The disk holding ${path} is full.`, {
        fix: 'Free some space on that disk, then try again.',
        detail,
      });
    case 'ENOENT':
      return new LipsyncError('remote-missing', `The folder ${path} does not exist.`, {
        fix: 'Check the path (is the disk mounted?), or create the folder.',
        detail,
      });
    case 'ENOTDIR':
      return new LipsyncError('remote-not-dir', `${path} is not a folder.`, {
        fix: "Choose a folder as the pair's remote path.",
        detail,
      });
    default:
      return new LipsyncError('unknown', `Could not ${what} ${path}: ${(e as Error).message}`, { detail });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

class LocalOps implements RemoteOps {
  constructor(private readonly root: string) {}

  async probe(): Promise<{ rsyncVersion: string | null; root: RootState }> {
    const version = await localRsyncVersion();
    let root: RootState;
    try {
      const st = await stat(this.root);
      if (!st.isDirectory()) root = 'not-dir';
      else {
        try {
          await access(this.root, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
          root = 'dir';
        } catch {
          root = 'no-access';
        }
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') root = 'no-access';
      else if (code === 'ENOENT' || code === 'ENOTDIR')
        root = (await isDanglingLink(this.root)) ? 'not-dir' : 'missing';
      else if (code === 'ELOOP') root = 'not-dir';
      else throw fsError(e, this.root, 'read');
    }
    return { rsyncVersion: version, root };
  }

  async createRoot(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
    } catch (e) {
      throw fsError(e, this.root, 'create');
    }
  }

  private async requireRoot(): Promise<void> {
    let st;
    try {
      st = await stat(this.root);
    } catch (e) {
      throw fsError(e, this.root, 'open');
    }
    if (!st.isDirectory())
      throw fsError(Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }), this.root, 'open');
  }

  async prepareMeta(): Promise<void> {
    await this.requireRoot();
    for (const d of ['partial', 'tmp', 'trash']) {
      try {
        await mkdir(join(this.root, `${META_DIR}/${d}`), { recursive: true });
      } catch (e) {
        throw fsError(e, join(this.root, META_DIR), 'create');
      }
    }
  }

  async rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]> {
    const trash = normalizeRelPath(trashDir);
    const checked = moves.map((m) => ({ m, from: normalizeRelPath(m.from), to: normalizeRelPath(m.to) }));
    await this.requireRoot();
    const results: MoveResult[] = [];
    for (const { m, from, to } of checked) {
      const src = join(this.root, from);
      const dst = join(this.root, to);
      try {
        if (!(await exists(src))) {
          results.push({ ...m, ok: false, reason: 'missing' });
          continue;
        }
        if (from === to) {
          results.push({ ...m, ok: true });
          continue;
        }
        let trashed: string | null = null;
        if (await exists(dst)) {
          const base = join(this.root, `${trash}/${to}`);
          let target = base;
          for (let n = 1; await exists(target); n++) target = `${base}.${n}`;
          await mkdir(posix.dirname(target), { recursive: true });
          await fsRename(dst, target);
          trashed = target;
        }
        try {
          await mkdir(posix.dirname(dst), { recursive: true });
          await fsRename(src, dst);
        } catch (e) {
          if (trashed !== null) await fsRename(trashed, dst).catch(() => undefined);
          throw e;
        }
        results.push({ ...m, ok: true });
      } catch (e) {
        results.push({ ...m, ok: false, reason: (e as Error).message });
      }
    }
    return results;
  }

  async readMarker(): Promise<string | null> {
    try {
      return (await readFile(join(this.root, MARKER_FILE), 'utf8')).trim();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw fsError(e, join(this.root, MARKER_FILE), 'read');
    }
  }

  async writeMarker(pairId: string): Promise<void> {
    await this.requireRoot();
    const file = join(this.root, MARKER_FILE);
    const tmp = `${file}.tmp`;
    try {
      await mkdir(join(this.root, META_DIR), { recursive: true });
      await writeFile(tmp, `${pairId}\n`);
      await fsRename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw fsError(e, file, 'write');
    }
  }

  async close(): Promise<void> {}
}

async function isDanglingLink(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isSymbolicLink();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// ssh

/** Script exit codes (below ssh's 255). */
const EXIT_ROOT_MISSING = 3;
const EXIT_ROOT_NOT_DIR = 4;

/** Lines our scripts print start with this, so a chatty login (motd, echo in .bashrc) is ignored. */
const OUT = 'LIPSYNC:';

const REQUIRE_ROOT = `
if [ ! -d "$R" ]; then
  if [ -e "$R" ] || [ -L "$R" ]; then echo "lipsync: not a directory: $R" >&2; exit ${EXIT_ROOT_NOT_DIR}; fi
  echo "lipsync: no such directory: $R" >&2; exit ${EXIT_ROOT_MISSING}
fi`;

const PROBE = `
if command -v rsync >/dev/null 2>&1; then
  v=$(rsync --version 2>/dev/null | head -n 1)
  printf '${OUT}rsync:%s\\n' "$v"
else
  printf '${OUT}rsync:\\n'
fi
if [ -d "$R" ]; then
  if [ -r "$R" ] && [ -w "$R" ] && [ -x "$R" ]; then s=dir; else s=no-access; fi
elif [ -e "$R" ] || [ -L "$R" ]; then
  s=not-dir
else
  d=$R
  while :; do
    d=\${d%/*}
    [ -z "$d" ] && d=/
    if [ -e "$d" ] || [ "$d" = / ]; then break; fi
  done
  if [ -d "$d" ] && [ ! -x "$d" ]; then s=no-access; else s=missing; fi
fi
printf '${OUT}root:%s\\n' "$s"`;

const MOVE_FUNCTIONS = `
lipsync_fail() { printf '${OUT}mv:%s:fail:%s\\n' "$1" "$(printf '%s' "$2" | tr '\\n' ' ')"; }
lipsync_mv() {
  if [ ! -e "$2" ] && [ ! -L "$2" ]; then printf '${OUT}mv:%s:missing\\n' "$1"; return 0; fi
  if [ "$2" = "$3" ]; then printf '${OUT}mv:%s:ok\\n' "$1"; return 0; fi
  tt=
  if [ -e "$3" ] || [ -L "$3" ]; then
    tt=$4; n=0
    while [ -e "$tt" ] || [ -L "$tt" ]; do n=$((n + 1)); tt="$4.$n"; done
    if ! err=$( { mkdir -p -- "\${tt%/*}" && mv -f -- "$3" "$tt"; } 2>&1 ); then lipsync_fail "$1" "$err"; return 0; fi
  fi
  if ! err=$( { mkdir -p -- "\${3%/*}" && mv -f -- "$2" "$3"; } 2>&1 ); then
    [ -n "$tt" ] && mv -f -- "$tt" "$3" 2>/dev/null
    lipsync_fail "$1" "$err"; return 0
  fi
  printf '${OUT}mv:%s:ok\\n' "$1"
}`;

/** Lines our script printed, without the prefix (login noise dropped). */
function outLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith(OUT))
    .map((l) => l.slice(OUT.length));
}

class SshOps implements RemoteOps {
  private readonly ctx: FailureContext;
  constructor(
    private readonly remote: Extract<RemoteSpec, { kind: 'ssh' }>,
    private readonly ssh: SshOptions,
    private readonly timeoutMs = 120_000,
  ) {
    this.ctx = { host: remote.host, path: remote.path };
    if (remote.user !== undefined) this.ctx.user = remote.user;
    if (remote.port !== undefined) this.ctx.port = remote.port;
    if (ssh.identityFile !== undefined) this.ctx.identityFile = ssh.identityFile;
  }

  /** Runs `body` with R set to the quoted root; throws LipsyncError on failure. */
  private async exec(body: string): Promise<RunResult> {
    const script = `R=${shQuote(this.remote.path)}\n${body}\n`;
    let r: RunResult;
    try {
      r = await sshExec(this.remote, this.ssh, script, { timeoutMs: this.timeoutMs });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LipsyncError('unknown', 'The ssh program was not found on this computer.', {
          fix: 'Install OpenSSH (the ssh client), e.g. `sudo apt install openssh-client`.',
          cause: e,
        });
      }
      throw e;
    }
    if (r.timedOut) {
      throw new LipsyncError(
        'host-unreachable',
        `${this.remote.host} did not answer within ${Math.round(this.timeoutMs / 1000)} s.`,
        {
          fix: 'Check the network connection to the server, then try again.',
          detail: r.stderr,
        },
      );
    }
    if (r.code === 0) return r;
    if (r.code === EXIT_ROOT_MISSING) {
      throw new LipsyncError(
        'remote-missing',
        `The folder ${this.remote.path} does not exist on ${this.remote.host}.`,
        {
          fix: 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
          detail: r.stderr,
        },
      );
    }
    if (r.code === EXIT_ROOT_NOT_DIR) {
      throw new LipsyncError('remote-not-dir', `${this.remote.path} on ${this.remote.host} is not a folder.`, {
        fix: "Choose a folder as the pair's remote path.",
        detail: r.stderr,
      });
    }
    throw classifyFailure('ssh', r.code, r.stderr, this.ctx);
  }

  async probe(): Promise<{ rsyncVersion: string | null; root: RootState }> {
    const lines = outLines((await this.exec(PROBE)).stdout);
    const v =
      lines
        .find((l) => l.startsWith('rsync:'))
        ?.slice('rsync:'.length)
        .trim() ?? '';
    const root = lines
      .find((l) => l.startsWith('root:'))
      ?.slice('root:'.length)
      .trim();
    if (root !== 'dir' && root !== 'missing' && root !== 'not-dir' && root !== 'no-access') {
      throw new LipsyncError(
        'unknown',
        `Unexpected answer from ${this.remote.host} while checking ${this.remote.path}.`,
        { detail: lines.join('\n') },
      );
    }
    return { rsyncVersion: v === '' ? null : (parseRsyncVersion(v) ?? v), root };
  }

  async createRoot(): Promise<void> {
    await this.exec('mkdir -p -- "$R"');
  }

  async prepareMeta(): Promise<void> {
    await this.exec(
      `${REQUIRE_ROOT}\nmkdir -p -- "$R/${META_DIR}/partial" "$R/${META_DIR}/tmp" "$R/${META_DIR}/trash"`,
    );
  }

  async rename(moves: { from: string; to: string }[], trashDir: string): Promise<MoveResult[]> {
    const trash = normalizeRelPath(trashDir);
    const checked = moves.map((m) => ({ from: normalizeRelPath(m.from), to: normalizeRelPath(m.to) }));
    if (moves.length === 0) return [];
    const root = this.remote.path;
    const calls = checked.map(
      (m, i) =>
        `lipsync_mv ${i} ${shQuote(join(root, m.from))} ${shQuote(join(root, m.to))} ${shQuote(join(root, `${trash}/${m.to}`))}`,
    );
    const r = await this.exec(`${REQUIRE_ROOT}\n${MOVE_FUNCTIONS}\n${calls.join('\n')}`);
    const byIndex = new Map<number, { ok: boolean; reason?: string }>();
    for (const line of outLines(r.stdout)) {
      const m = /^mv:(\d+):(ok|missing|fail)(?::(.*))?$/.exec(line);
      if (!m) continue;
      const status = m[2];
      byIndex.set(
        Number(m[1]),
        status === 'ok'
          ? { ok: true }
          : { ok: false, reason: status === 'missing' ? 'missing' : (m[3] ?? '').trim() || 'failed' },
      );
    }
    return moves.map((m, i) => ({
      from: m.from,
      to: m.to,
      ...(byIndex.get(i) ?? { ok: false, reason: 'no answer from the server' }),
    }));
  }

  async readMarker(): Promise<string | null> {
    const r = await this.exec(
      `M="$R/${MARKER_FILE}"\nif [ -f "$M" ]; then printf '${OUT}marker:'; cat -- "$M"; else printf '${OUT}none\\n'; fi`,
    );
    const at = r.stdout.indexOf(`${OUT}marker:`);
    if (at === -1) return null;
    return r.stdout.slice(at + `${OUT}marker:`.length).trim();
  }

  async writeMarker(pairId: string): Promise<void> {
    await this.exec(
      `${REQUIRE_ROOT}\nM="$R/${MARKER_FILE}"\nmkdir -p -- "$R/${META_DIR}" && printf '%s\\n' ${shQuote(pairId)} > "$M.tmp" && mv -f -- "$M.tmp" "$M"`,
    );
  }

  async close(): Promise<void> {
    await closeMaster(this.remote, this.ssh);
  }
}
