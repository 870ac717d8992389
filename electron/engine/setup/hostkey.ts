/**
 * The server's host key and this computer's trust in it: the key the server
 * shows (`ssh-keyscan`), the known_hosts entries for it (`ssh-keygen -F`), the
 * verdict known / unknown / changed, and trustHostKey, which appends the scanned
 * key to known_hosts only when its fingerprint is the one the user saw and the
 * host has no other key. A CHANGED key is never trusted here: that is a hard stop.
 */

import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HostKeyInfo, TrustHostKeyParams } from '../../../shared/setup.js';
import { LipsyncError } from '../errors.js';
import { shQuote } from '../remote/ssh.js';
import { isFile, tool, type SetupContext } from './context.js';
import { BLOB, KEY_ALGO, parseFingerprintLine, type Fingerprint, type PublicKey } from './key-format.js';
import { resolveHost, type ResolvedHost } from './resolve-host.js';

const SCAN_TIMEOUT_SEC = 5;

/** The name ssh looks up in known_hosts: `host` on port 22, `[host]:port` otherwise, or the HostKeyAlias. */
export function knownHostsName(host: string, port: number, hostKeyAlias: string | null = null): string {
  if (hostKeyAlias) return hostKeyAlias;
  return port === 22 ? host : `[${host}]:${port}`;
}

export interface KnownKey extends PublicKey {
  /** '@revoked' or '@cert-authority' when the line has a marker. */
  marker: string | null;
  file: string;
}

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

export async function scanHostKeys(h: ResolvedHost): Promise<{ keys: PublicKey[]; stderr: string }> {
  const r = await tool('ssh-keyscan', ['-p', String(h.port), '-T', String(SCAN_TIMEOUT_SEC), '--', h.hostname], {
    timeoutMs: (SCAN_TIMEOUT_SEC + 10) * 1000,
  });
  return { keys: parseKeyscan(r.stdout), stderr: r.stderr };
}

export async function fingerprintOf(k: PublicKey): Promise<Fingerprint> {
  const r = await tool('ssh-keygen', ['-l', '-E', 'sha256', '-f', '-'], { input: `${k.algo} ${k.blob}\n` });
  const fp = parseFingerprintLine(r.stdout.split('\n')[0] ?? '');
  if (r.code !== 0 || !fp) {
    throw new LipsyncError('unknown', `ssh-keygen could not read a ${k.algo} key.`, { detail: r.stderr.trim() });
  }
  return fp;
}

/** Every known_hosts entry for `name`, in the user's then the global files. */
export async function knownKeys(name: string, h: ResolvedHost): Promise<KnownKey[]> {
  const found: KnownKey[] = [];
  for (const file of [...h.userKnownHostsFiles, ...h.globalKnownHostsFiles]) {
    if (!(await isFile(file))) continue;
    const r = await tool('ssh-keygen', ['-F', name, '-f', file], { timeoutMs: 10_000 });
    if (r.code === 0) found.push(...parseKnownHostsFind(r.stdout, file));
  }
  return found;
}

export function hostKeyChangedError(name: string, fingerprint: string | null, conflicting: KnownKey[]): LipsyncError {
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
