/**
 * testConnection, the wizard's first check of a server: how ssh sees the host,
 * its host key (known / unknown / changed), then, for a known key only, a
 * BatchMode key login (auth ok / needs-key) that also reads the rsync version.
 */

import type { HostKeyInfo, TestConnectionParams, TestConnectionResult } from '../../../shared/setup.js';
import { classifyFailure, LipsyncError } from '../errors.js';
import type { RunResult } from '../proc/run.js';
import { REMOTE_SH, sshArgs, wrapScript } from '../remote/ssh.js';
import { failureContext, keyLoginOptions, targetOf, tool, type SetupContext } from './context.js';
import {
  fingerprintOf,
  hostKeyChangedError,
  hostKeyVerdict,
  knownHostsName,
  knownKeys,
  preferredKey,
  scanHostKeys,
  type KnownKey,
} from './hostkey.js';
import { resolveHost } from './resolve-host.js';

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
