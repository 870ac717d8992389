import { constants as fsConstants, realpathSync, statSync } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, posix, resolve } from 'node:path';
import type { AddPairParams } from '../../shared/api.js';
import { PairSettingsSchema, describeSettingsError, type PairSettings } from '../../shared/settings.js';
import type { SshOptions } from './types.js';
import { LipsyncError } from './errors.js';
import { isUnder } from './dirty.js';
import { parseRemote } from './remote/spec.js';
import { remoteOps } from './remote/ops.js';
import { rsyncVersion, versionAtLeast } from './remote/rsync.js';
import { validateExcludePatterns } from './excludes.js';
import { META_DIR } from '../../shared/layout.js';

export const MIN_RSYNC = '3.1.0';

const rsyncUpgradeFix =
  'Install rsync 3.1 or newer: on Debian/Ubuntu `sudo apt install rsync`, on macOS `brew install rsync`.';

/** A pair id from the local folder's name: lower-case, dashes, unique among `taken`. */
export function makePairId(local: string, taken: Set<string>): string {
  const base =
    basename(local)
      .normalize('NFKD')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'pair';
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}-${i}`;
  return id;
}

function realDir(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new LipsyncError('local-missing', `The local folder ${path} does not exist.`, {
      fix: 'Create it first (mkdir -p), or check the path.',
    });
  }
  if (!st.isDirectory()) {
    throw new LipsyncError('local-not-dir', `${path} is a file, not a folder.`, { fix: 'Give the path of a folder.' });
  }
  return realpathSync(path);
}

/** Refuses a local folder (a real path) inside, around or equal to another pair's folder. */
function checkLocalOverlap(local: string, existing: PairSettings[]): void {
  for (const p of existing) {
    let other = p.local;
    try {
      other = realpathSync(p.local);
    } catch {
      // a pair whose folder is gone still reserves its path
    }
    if (isUnder(local.slice(1), other.slice(1)) || isUnder(other.slice(1), local.slice(1)) || local === other) {
      throw new LipsyncError(
        'pair-overlap',
        local === other
          ? `${local} is already synced by pair "${p.id}".`
          : `${local} overlaps the folder of pair "${p.id}" (${p.local}): a folder can't be inside another synced folder, or contain one.`,
        { fix: 'Pick a folder outside every other pair, or remove the other pair first.' },
      );
    }
  }
}

/**
 * The setup wizard's check of a local folder, before the rest of a pair exists: an
 * absolute (or `~/…`) path of an existing folder this user can write, outside every
 * other pair's folder. Returns its real path and how many names it holds.
 */
export async function checkLocalFolder(
  given: string,
  existing: PairSettings[],
  home = homedir(),
): Promise<{ path: string; entries: number }> {
  const typed = given.trim();
  const expanded = typed === '~' ? home : typed.startsWith('~/') ? join(home, typed.slice(2)) : typed;
  if (!isAbsolute(expanded)) {
    throw new LipsyncError('invalid-settings', `"${typed}" is not a full path.`, {
      fix: `Give the full path of the folder, starting with / (for example ${join(home, typed || 'Sync')}).`,
    });
  }
  const local = realDir(resolve(expanded));
  try {
    await access(local, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    throw new LipsyncError('permission-denied', `You cannot read and write ${local}.`, {
      fix: `Pick a folder you own, or give yourself access (for example \`chmod u+rwx ${local}\`).`,
    });
  }
  checkLocalOverlap(local, existing);
  const names = (await readdir(local)).filter((n) => n !== META_DIR);
  return { path: local, entries: names.length };
}

/**
 * Check everything about a new pair before anything is written: the local
 * folder, overlap with other pairs, the remote address, rsync on both ends,
 * the remote folder. Each failure is one LipsyncError; on success the
 * validated settings are returned (the caller writes them).
 */
export async function validateNewPair(
  input: AddPairParams,
  existing: PairSettings[],
  ssh: SshOptions,
  cwd = process.cwd(),
): Promise<PairSettings> {
  const direction = input.direction ?? 'two-way';
  const local = realDir(resolve(cwd, input.local));
  checkLocalOverlap(local, existing);
  const remote = parseRemote(input.remote);
  if (remote.kind === 'local') {
    const r = resolve(remote.path);
    if (isUnder(r.slice(1), local.slice(1)) || isUnder(local.slice(1), r.slice(1))) {
      throw new LipsyncError('pair-overlap', `The remote folder ${r} and the local folder ${local} overlap.`, {
        fix: 'Sync to a folder outside the local one.',
      });
    }
  }
  // The same server folder (or one inside the other) synced from two local folders would
  // merge them into each other within seconds: refused.
  for (const p of existing) {
    let theirs: ReturnType<typeof parseRemote>;
    try {
      theirs = parseRemote(p.remote);
    } catch {
      continue;
    }
    if (!sameServer(remote, theirs)) continue;
    const a = posix.resolve(remote.path);
    const b = posix.resolve(theirs.path);
    if (a === b || isUnder(a.slice(1), b.slice(1)) || isUnder(b.slice(1), a.slice(1))) {
      throw new LipsyncError(
        'pair-overlap',
        a === b
          ? `The server folder ${input.remote} is already synced by pair "${p.id}" (with ${p.local}).`
          : `The server folder ${input.remote} overlaps the server folder of pair "${p.id}" (${p.remote}).`,
        {
          fix: `One server folder is synced to one folder per computer: use pair "${p.id}" (its local folder is ${p.local}), or remove it first.`,
        },
      );
    }
  }
  const excludeError = validateExcludePatterns(input.excludes ?? []);
  if (excludeError) throw new LipsyncError('invalid-settings', `excludes: ${excludeError}`);
  if (input.identityFile) {
    try {
      statSync(input.identityFile);
    } catch {
      throw new LipsyncError('auth-failed', `The ssh key ${input.identityFile} does not exist.`, {
        fix: 'Give the path of your private key (for example ~/.ssh/id_ed25519).',
      });
    }
  }

  const localRsync = await rsyncVersion();
  if (!localRsync)
    throw new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', { fix: rsyncUpgradeFix });
  if (!versionAtLeast(localRsync, MIN_RSYNC)) {
    throw new LipsyncError(
      'rsync-too-old',
      `rsync ${localRsync} is installed here; lipsync needs ${MIN_RSYNC} or newer.`,
      {
        fix: rsyncUpgradeFix,
      },
    );
  }

  const ops = remoteOps(remote, { ...ssh, identityFile: input.identityFile ?? ssh.identityFile });
  try {
    const probe = await ops.probe();
    if (probe.rsyncVersion === null) {
      throw new LipsyncError(
        'rsync-missing-remote',
        `rsync is not installed on ${remote.kind === 'ssh' ? remote.host : 'the target'}.`,
        {
          fix: 'Install it on the server: `sudo apt install rsync` (or its package manager).',
        },
      );
    }
    if (!versionAtLeast(probe.rsyncVersion, MIN_RSYNC)) {
      throw new LipsyncError(
        'rsync-too-old',
        `The server has rsync ${probe.rsyncVersion}; lipsync needs ${MIN_RSYNC} or newer there.`,
        {
          fix: 'Upgrade rsync on the server (`sudo apt install rsync` on a current Debian/Ubuntu).',
        },
      );
    }
    if (probe.root === 'not-dir') {
      throw new LipsyncError('remote-not-dir', `The remote path ${input.remote} is a file, not a folder.`, {
        fix: 'Give the path of a folder on the server.',
      });
    }
    if (probe.root === 'no-access') {
      throw new LipsyncError(
        'permission-denied',
        `The remote folder ${input.remote} is not readable and writable for this user.`,
        {
          fix: 'Fix its owner or permissions on the server.',
        },
      );
    }
    if (probe.root === 'missing') {
      if (!input.createRemote) {
        throw new LipsyncError('remote-missing', `The remote folder ${input.remote} does not exist.`, {
          fix: 'Create it with the same command plus --create-remote, or check the path.',
        });
      }
    }
    const id = input.id ?? makePairId(local, new Set(existing.map((p) => p.id)));
    if (existing.some((p) => p.id === id))
      throw new LipsyncError('pair-exists', `A pair named "${id}" exists already.`);
    const parsed = PairSettingsSchema.safeParse({
      id,
      local,
      remote: input.remote,
      direction,
      excludes: input.excludes ?? [],
      bwLimitKBps: input.bwLimitKBps ?? 0,
      compression: input.compression ?? 'auto',
      identityFile: input.identityFile,
      rescanIntervalSec: input.rescanIntervalSec ?? 3600,
    });
    if (!parsed.success) throw new LipsyncError('invalid-settings', describeSettingsError(parsed.error));
    // Everything checked: only now touch the server.
    if (probe.root === 'missing') await ops.createRoot();
    return parsed.data;
  } finally {
    await ops.close().catch(() => undefined);
  }
}

/** Whether two remote addresses name the same server account (by what was typed: host, user, port). */
function sameServer(a: ReturnType<typeof parseRemote>, b: ReturnType<typeof parseRemote>): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'local' || b.kind === 'local') return true;
  return (
    a.host.toLowerCase() === b.host.toLowerCase() &&
    (a.user ?? '') === (b.user ?? '') &&
    (a.port ?? 22) === (b.port ?? 22)
  );
}
