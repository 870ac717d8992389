/**
 * Running `rsync --list-only` against a server (listings and stats without GNU
 * find): its environment, its source argument, and reading its failures. The
 * server's rsync expands wildcards in a source path even with -s, so a root
 * holding `*`, `?` or `[` is backslash-escaped (rsyncSourcePath); such a root that
 * is missing or not a folder is then reported as missing.
 */

import { LipsyncError, remoteMissing, remoteNotDir, spawnFailure, unescapeRsyncName } from '../errors.js';
import { run, type RunResult } from '../proc/run.js';
import type { SshOptions } from '../types.js';
import { rsyncShellArg } from './ssh.js';
import { rsyncSourcePath } from './paths.js';
import type { SshRemote } from './script.js';

/** How long one listing run may take. */
const LIST_TIMEOUT_MS = 120_000;

/** The environment for a local rsync listing: times in UTC, messages in C, no inherited rsync settings. */
export function rsyncListEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', TZ: 'UTC0' };
  delete env.RSYNC_OLD_ARGS;
  delete env.RSYNC_PROTECT_ARGS;
  delete env.RSYNC_RSH;
  return env;
}

/** `-e SSH` and `host:DIR/` for an rsync listing of an absolute remote folder. */
export function rsyncSource(remote: SshRemote, ssh: SshOptions, dir: string): string[] {
  const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
  return ['-e', rsyncShellArg(remote, ssh), `${host}:${rsyncSourcePath(dir === '/' ? '/' : `${dir}/`)}`];
}

/** link_stat failures in rsync's stderr: name and reason. */
export function rsyncLinkStatErrors(stderr: string): { name: string; reason: string }[] {
  const out: { name: string; reason: string }[] = [];
  for (const line of stderr.split('\n')) {
    const m = /link_stat "(.*)" failed: (.*?)(?: \(\d+\))?$/.exec(line.trimEnd());
    if (m) out.push({ name: unescapeRsyncName(m[1] as string), reason: m[2] as string });
  }
  return out;
}

/** rsync could not enter the listed folder (it is missing or not a folder): the matching error, else null. */
export function rsyncChangeDirError(remote: SshRemote, abs: string, stderr: string): LipsyncError | null {
  const m = /change_dir "(.*)" failed: (No such file or directory|Not a directory)/.exec(stderr);
  if (!m) return null;
  return (m[2] === 'Not a directory' ? remoteNotDir : remoteMissing)(abs, remote.host, stderr.slice(-4000));
}

/** Runs a listing rsync (stdout to `onStdout` when given, else kept); rejects only when rsync can't start. */
export async function runRsync(
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: Buffer,
  onStdout?: (chunk: Buffer) => void,
): Promise<RunResult> {
  const opts: Parameters<typeof run>[2] = { env, timeoutMs: LIST_TIMEOUT_MS };
  if (input !== undefined) opts.input = input;
  if (onStdout) {
    opts.onStdout = onStdout;
    opts.maxBuffer = 64 * 1024;
  } else {
    opts.maxBuffer = 1024 * 1024;
  }
  try {
    return await run('rsync', args, opts);
  } catch (e) {
    throw spawnFailure('rsync', e);
  }
}
