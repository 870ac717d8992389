/**
 * What every step of the setup wizard's engine side shares (no UI here): the
 * SetupContext, running the OpenSSH tools, checking a typed host and user, and
 * the ssh options and failure context of its key logins.
 *
 * Every ssh run of the setup uses host key checking (never StrictHostKeyChecking=no);
 * remote work is a POSIX sh script on stdin with shQuote()d data (see remote/ssh.ts).
 */

import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LipsyncError, type FailureContext } from '../errors.js';
import { run, type RunOptions, type RunResult } from '../proc/run.js';
import type { SshTarget } from '../remote/ssh.js';
import type { SshOptions } from '../types.js';

export interface SetupContext {
  /** `ssh -F FILE` instead of ~/.ssh/config, when set. */
  sshConfigFile?: string;
  /** Directory for ControlMaster sockets (as SshOptions.controlDir). */
  controlDir: string;
  /** Where keys are listed and generated; default ~/.ssh. */
  sshDir?: string;
  /** The home directory `~/` means in readKey; default os.homedir(). */
  homeDir?: string;
  /** Where installKey creates its private askpass dir; default os.tmpdir(). */
  tmpDir?: string;
}

export const PROBE_CONNECT_TIMEOUT_SEC = 10;

/** run(), with a missing executable turned into a clear error. */
export async function tool(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    return await run(cmd, args, opts);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LipsyncError(
      'unknown',
      code === 'ENOENT' ? `${cmd} was not found on this computer.` : `Could not run ${cmd}: ${(e as Error).message}`,
      { fix: 'Install the OpenSSH client (ssh, ssh-keygen, ssh-keyscan).', cause: e },
    );
  }
}

export function checkHost(host: string): void {
  // eslint-disable-next-line no-control-regex
  if (host === '' || host.startsWith('-') || /[\s\x00-\x1f\x7f]/.test(host)) {
    throw new LipsyncError('invalid-remote', `${JSON.stringify(host)} is not a valid server name.`);
  }
}

export function checkUser(user: string | undefined): void {
  // eslint-disable-next-line no-control-regex
  if (user !== undefined && (user.startsWith('-') || /[\s\x00-\x1f\x7f]/.test(user))) {
    throw new LipsyncError('invalid-remote', `${JSON.stringify(user)} is not a valid user name.`);
  }
}

export function configArgs(ctx: SetupContext): string[] {
  return ctx.sshConfigFile ? ['-F', resolve(ctx.sshConfigFile)] : [];
}

export async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** ssh options of the setup's key logins (testConnection, browseRemote). */
export function keyLoginOptions(ctx: SetupContext, identityFile?: string): SshOptions {
  const o: SshOptions = { controlDir: ctx.controlDir, connectTimeoutSec: PROBE_CONNECT_TIMEOUT_SEC };
  if (ctx.sshConfigFile) o.configFile = ctx.sshConfigFile;
  if (identityFile) o.identityFile = identityFile;
  return o;
}

export function targetOf(p: { host: string; port?: number | undefined; user?: string | undefined }): SshTarget {
  const t: SshTarget = { host: p.host };
  if (p.port !== undefined) t.port = p.port;
  if (p.user !== undefined) t.user = p.user;
  return t;
}

/**
 * Who and where, for the error table (the host, port, user and key the wizard tried).
 * Not remote/script.ts's failureContext: that one takes a RemoteSpec with a path and
 * always sets `path` (the wizard has none before the folder step, and the table words
 * "the remote folder" only without one), and it keeps an empty identityFile (which
 * the table would name instead of ~/.ssh/id_ed25519); the messages would change.
 */
export function failureContext(p: {
  host: string;
  port?: number | undefined;
  user?: string | undefined;
  identityFile?: string | undefined;
}): FailureContext {
  const c: FailureContext = { host: p.host };
  if (p.port !== undefined) c.port = p.port;
  if (p.user !== undefined) c.user = p.user;
  if (p.identityFile) c.identityFile = p.identityFile;
  return c;
}
