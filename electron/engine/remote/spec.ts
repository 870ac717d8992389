/**
 * The pair's remote, as the user types it (`[user@]host[:port]:/path`, or an
 * absolute local path): parsed by the one parser of shared/remote-address.ts
 * (the forms, the strict host, user and port checks); on top of it, the engine's
 * normalised path, its LipsyncError 'invalid-remote' with the fix, and formatRemote.
 */

import { posix } from 'node:path';
import { parseRemoteAddress } from '../../../shared/remote-address.js';
import type { RemoteSpec } from '../types.js';
import { LipsyncError } from '../errors.js';

/** Normalises an absolute POSIX path: no '.', '..', '//' or trailing slash (except the root '/'). */
export function normalizeAbsPath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Parses what the user typed into a RemoteSpec; throws LipsyncError 'invalid-remote'. */
export function parseRemote(input: string): RemoteSpec {
  const r = parseRemoteAddress(input);
  if (!r.ok) throw new LipsyncError('invalid-remote', r.problem.message, { fix: r.problem.fix });
  return { ...r.remote, path: normalizeAbsPath(r.remote.path) };
}

/** The inverse of parseRemote: parseRemote(formatRemote(r)) equals r (for a normalised r). */
export function formatRemote(r: RemoteSpec): string {
  if (r.kind === 'local') return r.path;
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  return `${r.user !== undefined ? `${r.user}@` : ''}${host}${r.port !== undefined ? `:${r.port}` : ''}:${r.path}`;
}
