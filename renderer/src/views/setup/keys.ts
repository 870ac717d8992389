import type { ErrorInfo } from '../../../../shared/errors.js';
import type { SshKeyInfo } from '../../api.js';
import type { ServerTarget } from './types.js';

/** Where a key's public half lives: `publicKey` when it is a path, else `<path>.pub`. */
export function publicKeyPathOf(k: SshKeyInfo): string {
  if (k.publicKey.startsWith('/') && !k.publicKey.includes(' ')) return k.publicKey;
  return k.path.endsWith('.pub') ? k.path : `${k.path}.pub`;
}

/** The private key file (what ssh logs in with). */
export function privateKeyPathOf(k: SshKeyInfo): string {
  return k.path.endsWith('.pub') ? k.path.slice(0, -4) : k.path;
}

/** A word for a POSIX shell, in single quotes when it needs them. */
export function shWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./~-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `ssh-copy-id` from this computer: for servers that still accept a password. */
export function sshCopyIdCommand(k: SshKeyInfo, s: ServerTarget): string {
  const port = s.port !== 22 ? ` -p ${s.port}` : '';
  const dest = s.user ? `${s.user}@${s.host}` : s.host;
  return `ssh-copy-id -i ${shWord(publicKeyPathOf(k))}${port} ${shWord(dest)}`;
}

/** The line to run ON the server (key-only servers): appends the public key to authorized_keys. */
export function authorizedKeysCommand(k: SshKeyInfo): string {
  return `mkdir -p ~/.ssh && chmod 700 ~/.ssh && echo ${shWord(k.publicKey.trim())} >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys`;
}

/** The server answered but has no rsync: lipsync cannot sync with it (a hard stop at step 1). */
export function rsyncMissing(host: string): ErrorInfo {
  return {
    kind: 'rsync-missing-remote',
    message: `rsync is not installed on ${host}; lipsync needs it there to copy files.`,
    fix: 'Install it on the server (Debian/Ubuntu: `sudo apt install rsync`, Fedora: `sudo dnf install rsync`), then test again.',
  };
}
