import type { PairStatus } from '../../shared/status.js';

// Sizes and rates: the one formatter the CLI uses too (binary units, KiB/MiB).
export { formatBytes, formatEta, formatRate, formatBwLimit, BWLIMIT_UNIT } from '../../shared/format.js';

export function formatTime(t: number): string {
  return new Date(t).toLocaleString();
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function formatAgo(t: number | null, now = Date.now()): string {
  if (t === null) return 'never';
  const s = Math.round((now - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return formatTime(t);
}

export type Tone = 'ok' | 'busy' | 'warn' | 'error' | 'muted';

/**
 * The pair stopped before deleting many files and waits for the user's confirmation
 * (the engine's mass-delete guard: paused, reason `cancelled`, a fix that names `confirm`).
 */
export function needsConfirmation(p: PairStatus): boolean {
  return p.state === 'paused' && p.reason?.kind === 'cancelled' && /confirm/i.test(p.reason.fix ?? '');
}

/** The reason is the user's pause (not a problem): `cancelled` without a confirmation to give. */
export function isPauseReason(p: PairStatus): boolean {
  return p.reason?.kind === 'cancelled' && !/confirm/i.test(p.reason.fix ?? '');
}

/** The "Waiting" fact: `pending` is -1 while a full compare of both sides is pending. */
export function pendingLabel(pending: number): string {
  return pending < 0 ? 'full compare pending' : String(pending);
}

/**
 * What a pair's badge says. "Up to date" only when the pair is idle, connected to the
 * server, has no conflicts, nothing pending and no problem. A pause is neutral (muted),
 * never a problem; a pair finishing its step after a pause says "Pausing…", not "Syncing…".
 */
export function pairStateLabel(p: PairStatus): { label: string; tone: Tone } {
  switch (p.state) {
    case 'error':
      return { label: 'Error', tone: 'error' };
    case 'degraded':
      return { label: 'Degraded', tone: 'warn' };
    case 'paused':
      if (needsConfirmation(p)) return { label: 'Waiting for your confirmation', tone: 'warn' };
      return {
        label: p.pausedUntil ? `Paused until ${new Date(p.pausedUntil).toLocaleTimeString()}` : 'Paused',
        tone: 'muted',
      };
    case 'syncing':
      if (isPauseReason(p)) return { label: 'Pausing…', tone: 'muted' };
      return { label: 'Syncing…', tone: 'busy' };
    case 'starting':
      return { label: 'Starting…', tone: 'busy' };
    case 'idle':
    default:
      if (p.conflicts > 0)
        return { label: `${p.conflicts} conflict${p.conflicts === 1 ? '' : 's'} to resolve`, tone: 'warn' };
      if (p.remoteWatcher === 'disconnected') return { label: 'Server not connected', tone: 'warn' };
      if (p.reason || p.lastError) return { label: 'Needs attention', tone: 'warn' };
      if (p.pending < 0) return { label: 'Full compare pending', tone: 'busy' };
      if (p.pending > 0) return { label: `${p.pending} change${p.pending === 1 ? '' : 's'} waiting`, tone: 'busy' };
      return { label: 'Up to date', tone: 'ok' };
  }
}

/** `user@host:port:/path` (port only when not 22 … always kept explicit here for clarity). */
export function remoteSpec(user: string, host: string, port: number, path: string): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${user ? `${user}@` : ''}${h}:${port}:${path}`;
}

/** Exclude textarea → pattern list (drops blank lines and `#` comments). */
export function parseExcludes(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

export function joinPath(dir: string, rel: string): string {
  return `${dir.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;
}

export function parentPath(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i <= 0 ? '/' : trimmed.slice(0, i);
}
