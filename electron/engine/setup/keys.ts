/**
 * The user's own SSH key pairs: listKeys (the pairs in ~/.ssh), readKey (any
 * pair the user points at) and generateKey (ed25519, only inside the ssh
 * directory, never overwriting a file).
 */

import { chmod, lstat, mkdir, readFile, readdir, realpath } from 'node:fs/promises';
import { homedir, hostname as localHostName } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { GenerateKeyParams, ReadKeyParams, SshKeyInfo } from '../../../shared/setup.js';
import { LipsyncError } from '../errors.js';
import { isFile, tool, type SetupContext } from './context.js';
import { parseFingerprintLine, parsePublicKeyLine } from './key-format.js';

const DEFAULT_KEY_NAME = 'id_ed25519_lipsync';

function sshDirOf(ctx: SetupContext): string {
  return resolve(ctx.sshDir ?? join(homedir(), '.ssh'));
}

/** SshKeyInfo of the private key `path` (its `.pub` must exist). */
export async function keyInfo(path: string): Promise<SshKeyInfo> {
  const pubPath = `${path}.pub`;
  const pub = parsePublicKeyLine(await readFile(pubPath, 'utf8'));
  const r = await tool('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath], { timeoutMs: 10_000 });
  const fp = parseFingerprintLine(r.stdout.split('\n')[0] ?? '');
  if (r.code !== 0 || !fp) {
    throw new LipsyncError('invalid-settings', `${pubPath} is not a key ssh-keygen can read.`, {
      detail: r.stderr.trim(),
    });
  }
  return { path, publicKey: pub.line, type: fp.type, fingerprint: fp.fingerprint, comment: pub.comment };
}

export async function listKeys(_p: Record<string, never> | object, ctx: SetupContext): Promise<SshKeyInfo[]> {
  const dir = sshDirOf(ctx);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const set = new Set(names);
  const keys: SshKeyInfo[] = [];
  for (const name of names.sort()) {
    if (name.endsWith('.pub') || !set.has(`${name}.pub`)) continue;
    const path = join(dir, name);
    if (!(await isFile(path))) continue;
    try {
      keys.push(await keyInfo(path));
    } catch {
      // Not a readable key pair: not offered.
    }
  }
  return keys;
}

/**
 * readKey: any key pair the user points at (not only those in ~/.ssh): `path` is the
 * private key or its `.pub`, absolute or `~/…`. Both halves must exist: the public one
 * is what goes on the server, the private one is what the connection test logs in with.
 */
export async function readKey(p: ReadKeyParams, ctx: SetupContext): Promise<SshKeyInfo> {
  const typed = p.path.trim();
  const home = ctx.homeDir ?? homedir();
  const expanded = typed === '~' ? home : typed.startsWith('~/') ? join(home, typed.slice(2)) : typed;
  if (!isAbsolute(expanded)) {
    throw new LipsyncError('invalid-settings', `"${typed}" is not a full path of a key file.`, {
      fix: `Give the full path of the private key, for example ${join(sshDirOf(ctx), 'id_ed25519')}.`,
    });
  }
  const path = resolve(expanded.endsWith('.pub') ? expanded.slice(0, -4) : expanded);
  if (!(await isFile(path))) {
    throw new LipsyncError('invalid-settings', `There is no private key file ${path}.`, {
      fix: 'Pick the private key (the file without .pub); ssh logs in with it. Or generate a new key.',
    });
  }
  if (!(await isFile(`${path}.pub`))) {
    throw new LipsyncError('invalid-settings', `${path} has no public half (${path}.pub).`, {
      fix: `Make it with \`ssh-keygen -y -f ${path} > ${path}.pub\`, then pick the key again.`,
    });
  }
  return keyInfo(path);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether `path` is below `dir` (not `dir` itself); both absolute and normalized. */
function isBelow(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
}

function keyOutside(given: string, dir: string): LipsyncError {
  return new LipsyncError(
    'invalid-settings',
    `The key file "${given}" is not inside ${dir}; keys are made there only.`,
    {
      fix: `Give a file name, such as ${DEFAULT_KEY_NAME} (it is made in ${dir}), or leave it out for that default.`,
    },
  );
}

/**
 * The key file that generateKey's `path` names: a file name (or a relative path) is
 * taken inside the ssh directory `dir`, an absolute path must lie inside it. Anything
 * that leaves it (`../x`, `/tmp/x`, the directory itself) is refused.
 */
export function keyPathIn(dir: string, given: string | undefined): string {
  if (given === undefined) return join(dir, DEFAULT_KEY_NAME);
  const path = resolve(dir, given);
  if (given.trim() === '' || given.endsWith('/') || !isBelow(dir, path)) throw keyOutside(given, dir);
  return path;
}

/** The real path of `p` (absolute, normalized): of its deepest existing ancestor, with the rest appended. */
async function realpathOfExisting(p: string): Promise<string> {
  const rest: string[] = [];
  for (let cur = p; ; cur = dirname(cur)) {
    try {
      return join(await realpath(cur), ...rest);
    } catch {
      if (dirname(cur) === cur) return p;
      rest.unshift(basename(cur));
    }
  }
}

export async function generateKey(p: GenerateKeyParams, ctx: SetupContext): Promise<SshKeyInfo> {
  const dir = sshDirOf(ctx);
  const path = keyPathIn(dir, p.path);
  const comment = p.comment ?? `lipsync@${localHostName()}`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(comment)) {
    throw new LipsyncError('invalid-settings', 'The key comment must be a single line.');
  }
  for (const f of [path, `${path}.pub`]) {
    if (await exists(f)) {
      throw new LipsyncError('invalid-settings', `${f} already exists; lipsync never overwrites a key.`, {
        fix: 'Use the existing key, or choose another file name.',
      });
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A symlinked folder on the way must not lead out of the ssh directory either.
  const realDir = await realpath(dir);
  const realParent = await realpathOfExisting(dirname(path));
  if (realParent !== realDir && !isBelow(realDir, realParent)) throw keyOutside(p.path ?? path, dir);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // stdin is /dev/null: should the file appear meanwhile, ssh-keygen's "Overwrite (y/n)?" reads EOF and stops.
  const r = await tool('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], {
    timeoutMs: 30_000,
  });
  if (r.code !== 0) {
    throw new LipsyncError('unknown', `ssh-keygen could not create ${path}.`, { detail: r.stderr.trim() });
  }
  await chmod(path, 0o600);
  return keyInfo(path);
}
