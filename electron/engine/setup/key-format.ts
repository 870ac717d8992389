/**
 * What OpenSSH key text looks like: public key lines (`algo blob comment`) and
 * `ssh-keygen -l` fingerprint lines. Pure; shared by host keys (hostkey.ts) and
 * the user's own key pairs (keys.ts).
 */

import { LipsyncError } from '../errors.js';

export interface PublicKey {
  /** Algorithm name as in the key line: 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa'... */
  algo: string;
  /** The base64 key blob. */
  blob: string;
}

export const KEY_ALGO = /^(?:ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+|[a-z0-9-]+-cert-v01@openssh\.com)$/;
export const BLOB = /^[A-Za-z0-9+/]+={0,3}$/;

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
