/**
 * The engine side of the first-run setup wizard (no UI here):
 *
 * 1. testConnection: where ssh keeps this host's known keys (`ssh -G`, so the
 *    user's ~/.ssh/config aliases count), the server's host key
 *    (`ssh-keyscan`), known / unknown / changed (`ssh-keygen -F`), then, for a
 *    known key only, a BatchMode key login (auth ok / needs-key, rsync version).
 * 2. trustHostKey: appends the scanned key to known_hosts, only when its
 *    fingerprint is the one the user saw and the host has no other key.
 *    A CHANGED key is never trusted here: that is a hard stop.
 * 3. listKeys / generateKey: key pairs in ~/.ssh; ed25519, never overwritten.
 * 4. installKey: adds a public key to the server's ~/.ssh/authorized_keys
 *    with ONE password login. The password never touches the disk, a log or a
 *    command line: ssh gets it from an SSH_ASKPASS script (in a private temp
 *    dir, deleted afterwards) that prints an environment variable given only
 *    to that ssh child. Host key checking stays strict.
 * 5. browseRemote: the subdirectories of a remote folder, by key login.
 *
 * Every ssh run here uses host key checking (never StrictHostKeyChecking=no);
 * remote work is a POSIX sh script on stdin with shQuote()d data (see ssh.ts).
 */

import {
  appendFile,
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { homedir, hostname as localHostName, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type {
  BrowseRemoteInput,
  BrowseRemoteResult,
  GenerateKeyParams,
  HostKeyInfo,
  InstallKeyParams,
  ReadKeyParams,
  SshKeyInfo,
  TestConnectionParams,
  TestConnectionResult,
  TrustHostKeyParams,
} from '../../shared/setup.js';
import { classifyFailure, LipsyncError } from './errors.js';
import { run, type RunOptions, type RunResult } from './proc/run.js';
import { REMOTE_SH, shQuote, sshArgs, sshExec, wrapScript, type SshTarget } from './remote/ssh.js';
import type { SshOptions } from './types.js';

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

const SCAN_TIMEOUT_SEC = 5;
const PROBE_CONNECT_TIMEOUT_SEC = 10;
const DEFAULT_KEY_NAME = 'id_ed25519_lipsync';

// ---------------------------------------------------------------------------
// Pure parsing helpers (exported for unit tests)

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

/** The name ssh looks up in known_hosts: `host` on port 22, `[host]:port` otherwise, or the HostKeyAlias. */
export function knownHostsName(host: string, port: number, hostKeyAlias: string | null = null): string {
  if (hostKeyAlias) return hostKeyAlias;
  return port === 22 ? host : `[${host}]:${port}`;
}

export interface PublicKey {
  /** Algorithm name as in the key line: 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa'... */
  algo: string;
  /** The base64 key blob. */
  blob: string;
}

export interface KnownKey extends PublicKey {
  /** '@revoked' or '@cert-authority' when the line has a marker. */
  marker: string | null;
  file: string;
}

const KEY_ALGO = /^(?:ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+|[a-z0-9-]+-cert-v01@openssh\.com)$/;
const BLOB = /^[A-Za-z0-9+/]+={0,3}$/;

/** Keys in `ssh-keyscan` output (`host algo blob` lines; '#' lines are comments). Deduplicated, in order. */
export function parseKeyscan(out: string): PublicKey[] {
  const keys: PublicKey[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('#')) continue;
    const [, algo, blob] = line.trim().split(/\s+/);
    if (!algo || !blob || !KEY_ALGO.test(algo) || !BLOB.test(blob)) continue;
    if (!keys.some((k) => k.algo === algo && k.blob === blob)) keys.push({ algo, blob });
  }
  return keys;
}

/** Entries in `ssh-keygen -F NAME -f FILE` output ('#' lines are comments; lines may start with a marker). */
export function parseKnownHostsFind(out: string, file: string): KnownKey[] {
  const keys: KnownKey[] = [];
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const fields = t.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? (fields.shift() as string) : null;
    const [, algo, blob] = fields;
    if (!algo || !blob || !BLOB.test(blob)) continue;
    keys.push({ marker, algo, blob, file });
  }
  return keys;
}

/** Host key algorithms in the order ssh prefers them (and we show them). */
const PREFERRED_ALGOS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** The key to show: ed25519 first, then ssh's usual order. */
export function preferredKey<T extends PublicKey>(keys: T[]): T | undefined {
  const rank = (k: PublicKey) => {
    const i = PREFERRED_ALGOS.indexOf(k.algo);
    return i === -1 ? PREFERRED_ALGOS.length : i;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b))[0];
}

const sameKey = (a: PublicKey, b: PublicKey) => a.algo === b.algo && a.blob === b.blob;

export interface HostKeyVerdict {
  status: HostKeyInfo['status'];
  /** The key to show: the matching one when known, else the preferred scanned one. */
  key: PublicKey;
  /** For 'changed': the known_hosts entries that disagree. */
  conflicting: KnownKey[];
}

/**
 * known: a scanned key is trusted for the host (ssh prefers the algorithms it
 * has keys for, so it will use that one). changed: the host has trusted keys
 * (or a revoked one is offered) but none of the scanned keys is one of them.
 * unknown: nothing is known about the host. `scanned` must not be empty.
 */
export function hostKeyVerdict(scanned: PublicKey[], known: KnownKey[]): HostKeyVerdict {
  const preferred = preferredKey(scanned);
  if (!preferred) throw new Error('hostKeyVerdict: no scanned keys');
  const revoked = known.filter((k) => k.marker === '@revoked');
  const plain = known.filter((k) => k.marker === null);
  const offeredRevoked = scanned.filter((s) => revoked.some((r) => sameKey(r, s)));
  if (offeredRevoked.length > 0) {
    return { status: 'changed', key: preferredKey(offeredRevoked) ?? preferred, conflicting: revoked };
  }
  const matching = scanned.filter((s) => plain.some((k) => sameKey(k, s)));
  const match = preferredKey(matching);
  if (match) return { status: 'known', key: match, conflicting: [] };
  if (plain.length > 0) return { status: 'changed', key: preferred, conflicting: plain };
  return { status: 'unknown', key: preferred, conflicting: [] };
}

export interface Fingerprint {
  bits: number;
  fingerprint: string;
  comment: string;
  /** 'ED25519', 'RSA', 'ECDSA'... */
  type: string;
}

/** One line of `ssh-keygen -l` output: `256 SHA256:… comment (ED25519)`. */
export function parseFingerprintLine(line: string): Fingerprint | null {
  const m = /^(\d+) (\S+) (.*?) ?\(([^()]+)\)$/.exec(line.trim());
  if (!m) return null;
  return { bits: Number(m[1]), fingerprint: m[2] as string, comment: m[3] as string, type: m[4] as string };
}

const BROWSE_MAGIC = 'LIPSYNC-BROWSE';

/** browseRemote's script output: magic, the absolute path, then names, each NUL-terminated. */
export function parseBrowseOutput(out: string): BrowseRemoteResult {
  const parts = out.split('\0');
  if (parts[0] !== BROWSE_MAGIC || parts.length < 3 || parts[parts.length - 1] !== '') {
    throw new LipsyncError('unknown', 'The server sent an unexpected folder listing (too many folders?).', {
      detail: out.slice(0, 500),
    });
  }
  const path = parts[1] as string;
  const dirs = parts
    .slice(2, -1)
    .filter((n) => n !== '' && !n.startsWith('.'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' }) || (a < b ? -1 : a > b ? 1 : 0));
  return { path, dirs };
}

/** Checks a public key line (one line, a known algorithm, a base64 blob). */
export function parsePublicKeyLine(text: string): { line: string; algo: string; blob: string; comment: string } {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new LipsyncError('invalid-settings', 'That file is a PRIVATE key; choose its .pub file (the public key).');
  }
  const line = text.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  const fields = line?.trim().split(/[ \t]+/) ?? [];
  const [algo, blob, ...rest] = fields;
  const comment = rest.join(' ');
  // eslint-disable-next-line no-control-regex
  if (!algo || !blob || !KEY_ALGO.test(algo) || !BLOB.test(blob) || /[\x00-\x1f\x7f]/.test(comment)) {
    throw new LipsyncError(
      'invalid-settings',
      'That file is not an SSH public key (expected one line like `ssh-ed25519 AAAA… comment`).',
    );
  }
  return { line: [algo, blob, ...(comment ? [comment] : [])].join(' '), algo, blob, comment };
}

// ---------------------------------------------------------------------------
// Tools

/** run(), with a missing executable turned into a clear error. */
async function tool(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
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

function checkHost(host: string): void {
  // eslint-disable-next-line no-control-regex
  if (host === '' || host.startsWith('-') || /[\s\x00-\x1f\x7f]/.test(host)) {
    throw new LipsyncError('invalid-remote', `${JSON.stringify(host)} is not a valid server name.`);
  }
}

function checkUser(user: string | undefined): void {
  // eslint-disable-next-line no-control-regex
  if (user !== undefined && (user.startsWith('-') || /[\s\x00-\x1f\x7f]/.test(user))) {
    throw new LipsyncError('invalid-remote', `${JSON.stringify(user)} is not a valid user name.`);
  }
}

function configArgs(ctx: SetupContext): string[] {
  return ctx.sshConfigFile ? ['-F', resolve(ctx.sshConfigFile)] : [];
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

async function scanHostKeys(h: ResolvedHost): Promise<{ keys: PublicKey[]; stderr: string }> {
  const r = await tool('ssh-keyscan', ['-p', String(h.port), '-T', String(SCAN_TIMEOUT_SEC), '--', h.hostname], {
    timeoutMs: (SCAN_TIMEOUT_SEC + 10) * 1000,
  });
  return { keys: parseKeyscan(r.stdout), stderr: r.stderr };
}

async function fingerprintOf(k: PublicKey): Promise<Fingerprint> {
  const r = await tool('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: `${k.algo} ${k.blob}\n` });
  const fp = parseFingerprintLine(r.stdout.split('\n')[0] ?? '');
  if (r.code !== 0 || !fp) {
    throw new LipsyncError('unknown', `ssh-keygen could not read a ${k.algo} key.`, { detail: r.stderr.trim() });
  }
  return fp;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Every known_hosts entry for `name`, in the user's then the global files. */
async function knownKeys(name: string, h: ResolvedHost): Promise<KnownKey[]> {
  const found: KnownKey[] = [];
  for (const file of [...h.userKnownHostsFiles, ...h.globalKnownHostsFiles]) {
    if (!(await isFile(file))) continue;
    const r = await tool('ssh-keygen', ['-F', name, '-f', file], { timeoutMs: 10_000 });
    if (r.code === 0) found.push(...parseKnownHostsFind(r.stdout, file));
  }
  return found;
}

function hostKeyChangedError(name: string, fingerprint: string | null, conflicting: KnownKey[]): LipsyncError {
  const file = conflicting[0]?.file;
  const remove = `ssh-keygen -R ${shQuote(name)}${file ? ` -f ${shQuote(file)}` : ''}`;
  const revoked = conflicting.some((k) => k.marker === '@revoked');
  return new LipsyncError(
    'host-key-changed',
    revoked
      ? `The server ${name} offered a host key that is marked as REVOKED on this computer. lipsync stopped and will not connect.`
      : `The identity (host key) of ${name} is not the one this computer remembers: the server was reinstalled or its keys replaced, or someone is intercepting the connection. This is a hard stop: lipsync will not connect and will not trust the new key.`,
    {
      fix:
        `Ask the server's administrator whether its host key fingerprint is ${fingerprint ?? 'the one shown'} ` +
        '(on the server: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`). ' +
        `Only if it matches, remove the old key with \`${remove}\` and run the setup again. If it does not match, do not connect.`,
    },
  );
}

/** ssh options of the setup's key logins (testConnection, browseRemote). */
function keyLoginOptions(ctx: SetupContext, identityFile?: string): SshOptions {
  const o: SshOptions = { controlDir: ctx.controlDir, connectTimeoutSec: PROBE_CONNECT_TIMEOUT_SEC };
  if (ctx.sshConfigFile) o.configFile = ctx.sshConfigFile;
  if (identityFile) o.identityFile = identityFile;
  return o;
}

function targetOf(p: { host: string; port?: number | undefined; user?: string | undefined }): SshTarget {
  const t: SshTarget = { host: p.host };
  if (p.port !== undefined) t.port = p.port;
  if (p.user !== undefined) t.user = p.user;
  return t;
}

const PROBE_SCRIPT = `if command -v rsync >/dev/null 2>&1; then rsync --version 2>/dev/null | head -n 1; fi
exit 0`;

/**
 * A BatchMode key login running PROBE_SCRIPT, never through an existing
 * ControlMaster (a master opened with another key must not answer for this one).
 */
async function loginProbe(p: TestConnectionParams, ctx: SetupContext): Promise<RunResult> {
  const args = ['-o', 'ControlPath=none', ...sshArgs(targetOf(p), keyLoginOptions(ctx, p.identityFile), REMOTE_SH)];
  return tool('ssh', args, { input: wrapScript(PROBE_SCRIPT), timeoutMs: 60_000 });
}

function failureContext(p: {
  host: string;
  port?: number | undefined;
  user?: string | undefined;
  identityFile?: string | undefined;
}) {
  const c: { host: string; port?: number; user?: string; identityFile?: string } = { host: p.host };
  if (p.port !== undefined) c.port = p.port;
  if (p.user !== undefined) c.user = p.user;
  if (p.identityFile) c.identityFile = p.identityFile;
  return c;
}

// ---------------------------------------------------------------------------
// testConnection

export async function testConnection(p: TestConnectionParams, ctx: SetupContext): Promise<TestConnectionResult> {
  const h = await resolveHost(p, ctx);
  const name = knownHostsName(h.hostname, h.port, h.hostKeyAlias);
  const known = await knownKeys(name, h);

  if (h.proxied) return testProxied(p, ctx, name, known);

  const scan = await scanHostKeys(h);
  if (scan.keys.length === 0) {
    // ssh-keyscan says little about why: ask ssh itself, for a message the error table knows.
    const probe = await loginProbe(p, ctx);
    const err =
      probe.code === 0 || probe.code !== 255
        ? new LipsyncError('host-unreachable', `${p.host} did not send its host key (is it an SSH server?).`, {
            detail: scan.stderr.trim(),
          })
        : classifyFailure('ssh', probe.code, probe.stderr, failureContext(p));
    const e =
      err.kind === 'host-unreachable'
        ? err
        : new LipsyncError('host-unreachable', `Could not read the host key of ${p.host}.`, {
            detail: [scan.stderr.trim(), probe.stderr.trim()].filter(Boolean).join('\n'),
          });
    return { reachable: false, hostKey: null, auth: 'not-tried', rsyncVersion: null, error: e.toInfo() };
  }

  const verdict = hostKeyVerdict(scan.keys, known);
  const fp = await fingerprintOf(verdict.key);
  const hostKey: HostKeyInfo = { type: fp.type, fingerprint: fp.fingerprint, status: verdict.status };
  if (verdict.status === 'changed') {
    const error = hostKeyChangedError(name, fp.fingerprint, verdict.conflicting).toInfo();
    return { reachable: true, hostKey, auth: 'not-tried', rsyncVersion: null, error };
  }
  if (verdict.status === 'unknown') return { reachable: true, hostKey, auth: 'not-tried', rsyncVersion: null };
  return { reachable: true, hostKey, ...(await authProbe(p, ctx)) };
}

async function authProbe(
  p: TestConnectionParams,
  ctx: SetupContext,
): Promise<Pick<TestConnectionResult, 'auth' | 'rsyncVersion' | 'error'>> {
  const r = await loginProbe(p, ctx);
  if (r.code === 0) {
    const v = /version\s+v?(\d+\.\d+\.\d+\S*)/.exec(r.stdout)?.[1] ?? null;
    return { auth: 'ok', rsyncVersion: v };
  }
  const err = classifyFailure('ssh', r.code, r.stderr, failureContext(p));
  if (err.kind === 'auth-failed') return { auth: 'needs-key', rsyncVersion: null };
  return { auth: 'failed', rsyncVersion: null, error: err.toInfo() };
}

/** ssh-keyscan cannot go through ProxyJump/ProxyCommand: let ssh check the known key itself. */
async function testProxied(
  p: TestConnectionParams,
  ctx: SetupContext,
  name: string,
  known: KnownKey[],
): Promise<TestConnectionResult> {
  const plain = known.filter((k) => k.marker === null);
  const first = preferredKey(plain);
  if (!first) {
    const e = new LipsyncError(
      'host-key-unknown',
      `${p.host} is reached through a jump host (ProxyJump/ProxyCommand), so lipsync cannot show its host key here.`,
      {
        fix: `Connect once in a terminal with \`ssh ${p.host}\`, check the fingerprint it shows with the server's administrator, and answer "yes"; then test again.`,
      },
    );
    return { reachable: true, hostKey: null, auth: 'not-tried', rsyncVersion: null, error: e.toInfo() };
  }
  const r = await loginProbe(p, ctx);
  const err = r.code === 0 ? null : classifyFailure('ssh', r.code, r.stderr, failureContext(p));
  if (err?.kind === 'host-unreachable') {
    return { reachable: false, hostKey: null, auth: 'not-tried', rsyncVersion: null, error: err.toInfo() };
  }
  if (err?.kind === 'host-key-changed') {
    const fp = /(SHA256:[A-Za-z0-9+/=]+)/.exec(r.stderr)?.[1] ?? null;
    const hostKey: HostKeyInfo | null = fp
      ? { type: /(\w+) key sent by the remote host/.exec(r.stderr)?.[1] ?? '', fingerprint: fp, status: 'changed' }
      : null;
    return {
      reachable: true,
      hostKey,
      auth: 'not-tried',
      rsyncVersion: null,
      error: hostKeyChangedError(name, fp, plain).toInfo(),
    };
  }
  const fp = await fingerprintOf(first);
  const hostKey: HostKeyInfo = { type: fp.type, fingerprint: fp.fingerprint, status: 'known' };
  if (!err) {
    return {
      reachable: true,
      hostKey,
      auth: 'ok',
      rsyncVersion: /version\s+v?(\d+\.\d+\.\d+\S*)/.exec(r.stdout)?.[1] ?? null,
    };
  }
  if (err.kind === 'auth-failed') return { reachable: true, hostKey, auth: 'needs-key', rsyncVersion: null };
  return { reachable: true, hostKey, auth: 'failed', rsyncVersion: null, error: err.toInfo() };
}

// ---------------------------------------------------------------------------
// trustHostKey

export async function trustHostKey(p: TrustHostKeyParams, ctx: SetupContext): Promise<{ trusted: true }> {
  const h = await resolveHost(p, ctx);
  const name = knownHostsName(h.hostname, h.port, h.hostKeyAlias);
  if (h.proxied) {
    throw new LipsyncError(
      'host-key-unknown',
      `${p.host} is reached through a jump host (ProxyJump/ProxyCommand), so lipsync cannot check its host key itself.`,
      { fix: `Connect once in a terminal with \`ssh ${p.host}\`, check the fingerprint and answer "yes".` },
    );
  }
  const scan = await scanHostKeys(h);
  if (scan.keys.length === 0) {
    throw new LipsyncError('host-unreachable', `Could not read the host key of ${p.host}; nothing was trusted.`, {
      detail: scan.stderr.trim(),
    });
  }
  const known = await knownKeys(name, h);
  const verdict = hostKeyVerdict(scan.keys, known);
  const wanted = p.fingerprint.trim();
  const withFp = await Promise.all(scan.keys.map(async (k) => ({ key: k, fp: await fingerprintOf(k) })));
  const chosen = withFp.find((k) => k.fp.fingerprint === wanted);

  if (verdict.status === 'changed') {
    throw hostKeyChangedError(
      name,
      chosen?.fp.fingerprint ?? (await fingerprintOf(verdict.key)).fingerprint,
      verdict.conflicting,
    );
  }
  if (!chosen) {
    const now = withFp.find((k) => sameKey(k.key, verdict.key))?.fp.fingerprint;
    throw new LipsyncError(
      'host-key-changed',
      `The server ${name} now shows the fingerprint ${now ?? '(none)'}, not the ${wanted} you checked. Nothing was trusted.`,
      {
        fix: 'Test the connection again and compare the new fingerprint with the server administrator before trusting it.',
      },
    );
  }
  if (verdict.status === 'known') return { trusted: true };

  const file = h.userKnownHostsFiles[0];
  if (!file) {
    throw new LipsyncError('invalid-settings', 'ssh has no known_hosts file to write to (UserKnownHostsFile none).');
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const cur = await readFile(file);
    if (cur.length > 0 && cur[cur.length - 1] !== 0x0a) prefix = '\n';
  } catch {
    // No file yet: appendFile creates it.
  }
  await appendFile(file, `${prefix}${name} ${chosen.key.algo} ${chosen.key.blob}\n`, { mode: 0o600 });
  return { trusted: true };
}

// ---------------------------------------------------------------------------
// Keys

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

// ---------------------------------------------------------------------------
// installKey

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

// ---------------------------------------------------------------------------
// browseRemote

/** The remote script listing the subdirectories of `path` (see parseBrowseOutput). */
export function browseScript(path: string): string {
  return `p=${shQuote(path === '' ? '~' : path)}
case $p in
  '~') p=$HOME ;;
  '~/'*) p=$HOME/\${p#??} ;;
esac
if [ ! -e "$p" ]; then echo "lipsync: $p: No such file or directory" >&2; exit 3; fi
if [ ! -d "$p" ]; then echo "lipsync: $p: Not a directory" >&2; exit 4; fi
cd -- "$p" || exit 5
printf '%s\\000%s\\000' ${BROWSE_MAGIC} "$PWD"
for f in *; do
  if [ -d "$f" ]; then printf '%s\\000' "$f"; fi
done
exit 0`;
}

/**
 * The subdirectories of a remote folder (default: the home directory), by key
 * login (BatchMode). Names starting with '.' are left out; symlinks to
 * directories are included. Returns the absolute path listed.
 */
export async function browseRemote(p: BrowseRemoteInput, ctx: SetupContext): Promise<BrowseRemoteResult> {
  checkHost(p.host);
  checkUser(p.user);
  const path = p.path ?? '~';
  const r = await sshExec(targetOf(p), keyLoginOptions(ctx, p.identityFile), browseScript(path), { timeoutMs: 60_000 });
  if (r.code === 0) return parseBrowseOutput(r.stdout);
  const where = `${p.user ? `${p.user}@` : ''}${p.host}`;
  if (r.code === 3) {
    throw new LipsyncError('remote-missing', `The folder ${path} does not exist on ${where}.`, {
      detail: r.stderr.trim(),
    });
  }
  if (r.code === 4) {
    throw new LipsyncError('remote-not-dir', `${path} on ${where} is not a folder.`, { detail: r.stderr.trim() });
  }
  if (r.code === 5) {
    throw new LipsyncError('permission-denied', `No permission to open the folder ${path} on ${where}.`, {
      detail: r.stderr.trim(),
    });
  }
  throw classifyFailure('ssh', r.code, r.stderr, { ...failureContext(p), path });
}
