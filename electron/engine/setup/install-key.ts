/**
 * installKey: adds a public key to the server's ~/.ssh/authorized_keys with ONE
 * password login. The password never touches the disk, a log or a command line:
 * ssh gets it from an SSH_ASKPASS script (in a private temp dir, deleted
 * afterwards) that prints an environment variable given only to that ssh child.
 * Host key checking stays strict.
 */

import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { InstallKeyParams } from '../../../shared/setup.js';
import { classifyFailure, LipsyncError } from '../errors.js';
import type { RunResult } from '../proc/run.js';
import { REMOTE_SH, shQuote, wrapScript } from '../remote/ssh.js';
import {
  checkHost,
  checkUser,
  configArgs,
  failureContext,
  PROBE_CONNECT_TIMEOUT_SEC,
  tool,
  type SetupContext,
} from './context.js';
import { parsePublicKeyLine } from './key-format.js';

/**
 * The SSH_ASKPASS program: answers ONE password prompt with the password
 * from the environment (LIPSYNC_ASKPASS_SECRET, given only to that ssh
 * child), and nothing else (a host key question gets no answer). It holds no
 * secret itself. printf is a shell builtin: the password is in no argv.
 */
export const ASKPASS_SCRIPT = `#!/bin/sh
# lipsync setup: answers ssh's password prompt once, from the environment.
case "$1" in
  *assword*|*ASSWORD*) ;;
  *) exit 1 ;;
esac
[ -e "$LIPSYNC_ASKPASS_USED" ] && exit 1
: > "$LIPSYNC_ASKPASS_USED" || exit 1
printf '%s\\n' "$LIPSYNC_ASKPASS_SECRET"
`;

/** The remote script that adds `keyLine` to ~/.ssh/authorized_keys once (POSIX sh). */
export function installKeyScript(keyLine: string): string {
  const key = shQuote(keyLine);
  return `umask 077
cd || exit 3
mkdir -p .ssh || exit 3
touch .ssh/authorized_keys || exit 3
chmod go-w .ssh .ssh/authorized_keys 2>/dev/null
if ! grep -qxF -- ${key} .ssh/authorized_keys; then
  if [ -s .ssh/authorized_keys ] && [ -n "$(tail -c 1 .ssh/authorized_keys)" ]; then echo >> .ssh/authorized_keys || exit 3; fi
  printf '%s\\n' ${key} >> .ssh/authorized_keys || exit 3
fi
if command -v restorecon >/dev/null 2>&1; then restorecon -F .ssh .ssh/authorized_keys >/dev/null 2>&1; fi
exit 0`;
}

export async function installKey(p: InstallKeyParams, ctx: SetupContext): Promise<{ installed: true }> {
  checkHost(p.host);
  checkUser(p.user);
  let text: string;
  try {
    text = await readFile(resolve(p.publicKeyPath), 'utf8');
  } catch (e) {
    throw new LipsyncError('invalid-settings', `Cannot read the public key ${p.publicKeyPath}.`, { cause: e });
  }
  const key = parsePublicKeyLine(text);
  const who = `${p.user}@${p.host}`;

  const dir = await mkdtemp(join(ctx.tmpDir ?? tmpdir(), 'lipsync-askpass-'));
  try {
    await chmod(dir, 0o700);
    const askpass = join(dir, 'askpass.sh');
    await writeFile(askpass, ASKPASS_SCRIPT, { mode: 0o700 });
    const args = [
      ...configArgs(ctx),
      ...[
        'BatchMode=no',
        'StrictHostKeyChecking=yes',
        'UpdateHostKeys=no',
        'ControlMaster=no',
        'ControlPath=none',
        'PreferredAuthentications=password,keyboard-interactive',
        'PubkeyAuthentication=no',
        'GSSAPIAuthentication=no',
        'HostbasedAuthentication=no',
        'NumberOfPasswordPrompts=1',
        `ConnectTimeout=${PROBE_CONNECT_TIMEOUT_SEC}`,
        'ForwardAgent=no',
        'ForwardX11=no',
        'ClearAllForwardings=yes',
        'PermitLocalCommand=no',
        'RequestTTY=no',
      ].flatMap((o) => ['-o', o]),
      ...(p.port !== undefined ? ['-p', String(p.port)] : []),
      '-l',
      p.user,
      '--',
      p.host,
      ...REMOTE_SH,
    ];
    const r = await tool('ssh', args, {
      input: wrapScript(installKeyScript(key.line)),
      timeoutMs: 60_000,
      env: {
        ...process.env,
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: 'force',
        DISPLAY: process.env.DISPLAY || ':0',
        LIPSYNC_ASKPASS_SECRET: p.password,
        LIPSYNC_ASKPASS_USED: join(dir, 'used'),
      },
    });
    if (r.code === 0) return { installed: true };
    if (r.code === 255) throw installFailure(r, p, who);
    throw new LipsyncError(
      /Permission denied|Read-only file system/.test(r.stderr) ? 'permission-denied' : 'unknown',
      `Could not add the key to ~/.ssh/authorized_keys on ${who}.`,
      { detail: r.stderr.trim(), fix: `Check that ${p.user} owns its home directory and ~/.ssh on the server.` },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function installFailure(r: RunResult, p: InstallKeyParams, who: string): LipsyncError {
  const detail = r.stderr.trim();
  const denied = /Permission denied \(([^)]*)\)/.exec(r.stderr);
  if (denied) {
    const methods = (denied[1] ?? '').split(',');
    if (methods.includes('password') || methods.includes('keyboard-interactive')) {
      return new LipsyncError('auth-failed', `${who} refused the password; the key was not installed.`, {
        detail,
        fix: `Check the password of the account ${p.user} on the server (it is the server's login password, not a key passphrase) and try again.`,
      });
    }
    return new LipsyncError(
      'auth-failed',
      `${who} does not accept password logins, so lipsync cannot install the key with a password.`,
      {
        detail,
        fix: "Ask the server's administrator to add your public key to ~/.ssh/authorized_keys, or install it from a computer that can already log in.",
      },
    );
  }
  const err = classifyFailure('ssh', r.code, r.stderr, failureContext(p));
  if (err.kind === 'host-key-unknown') {
    return new LipsyncError(
      'host-key-unknown',
      `The host key of ${p.host} is not trusted yet, so the password was not sent.`,
      {
        detail,
        fix: "Test the connection and trust the server's fingerprint first, then install the key.",
      },
    );
  }
  return err;
}
