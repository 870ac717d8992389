/**
 * How ssh itself sees a host the user typed (`ssh -G`, so ~/.ssh/config aliases,
 * ports, users and ProxyJump count): its real name and port, and where ssh keeps
 * the host's known keys. The first step of testConnection and trustHostKey.
 */

import { LipsyncError } from '../errors.js';
import { checkHost, checkUser, configArgs, tool, type SetupContext } from './context.js';

/** What `ssh -G` says about a host. */
export interface ResolvedHost {
  hostname: string;
  port: number;
  user: string | null;
  /** ssh writes new keys to the first one. */
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hostKeyAlias: string | null;
  /** Reached through ProxyJump / ProxyCommand (ssh-keyscan cannot follow). */
  proxied: boolean;
}

/**
 * Splits a known-hosts file list as `ssh -G` prints it: expanded paths
 * separated by spaces, unquoted (so only a space before a '/' separates).
 */
function splitPathList(v: string | undefined): string[] {
  if (v === undefined) return [];
  return v
    .split(/ (?=[/~])/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && s.toLowerCase() !== 'none');
}

export function parseSshG(out: string): ResolvedHost {
  const values = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(\S+) (.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const key = (m[1] as string).toLowerCase();
    if (!values.has(key)) values.set(key, m[2] as string);
  }
  const hostname = values.get('hostname');
  const port = Number(values.get('port') ?? '22');
  if (!hostname) throw new Error('ssh -G printed no hostname');
  const proxyCommand = values.get('proxycommand');
  const proxyJump = values.get('proxyjump');
  const alias = values.get('hostkeyalias');
  return {
    hostname,
    port: Number.isInteger(port) && port > 0 ? port : 22,
    user: values.get('user') ?? null,
    userKnownHostsFiles: splitPathList(values.get('userknownhostsfile')),
    globalKnownHostsFiles: splitPathList(values.get('globalknownhostsfile')),
    hostKeyAlias: alias && alias !== 'none' ? alias : null,
    proxied:
      (proxyCommand !== undefined && proxyCommand !== 'none') || (proxyJump !== undefined && proxyJump !== 'none'),
  };
}

/** `ssh -G`: the host name, port and known_hosts files ssh would use for `host` (aliases resolved). */
export async function resolveHost(
  t: { host: string; port?: number | undefined; user?: string | undefined },
  ctx: SetupContext,
): Promise<ResolvedHost> {
  checkHost(t.host);
  checkUser(t.user);
  const args = ['-G', ...configArgs(ctx)];
  if (t.port !== undefined) args.push('-p', String(t.port));
  if (t.user !== undefined) args.push('-l', t.user);
  const r = await tool('ssh', [...args, '--', t.host], { timeoutMs: 10_000 });
  if (r.code !== 0) {
    throw new LipsyncError('invalid-settings', `ssh could not read its configuration for ${t.host}.`, {
      detail: r.stderr.trim(),
      fix: ctx.sshConfigFile ? `Check ${ctx.sshConfigFile}.` : 'Check ~/.ssh/config.',
    });
  }
  return parseSshG(r.stdout);
}
