/**
 * Sizes and rates, the one way every UI shows them (the CLI and the renderer).
 *
 * Binary units, labelled as such: 1 KiB = 1024 bytes, 1 MiB = 1024 KiB, and so on.
 * rsync's `--bwlimit`, which a pair's bandwidth limit is passed to, counts in KiB/s,
 * so a limit of 500 shows as "500 KiB/s" and a transfer held to it as ~500 KiB/s.
 */

export const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** The unit of a pair's bandwidth limit (`bwLimitKBps`, `--bwlimit`). */
export const BWLIMIT_UNIT = 'KiB/s';

/** `1536` → "1.5 KiB", `500 * 1024` → "500 KiB"; one decimal below 10 of a unit. "—" for no number. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  let v = n;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  // 1023.7 KiB would round to "1024 KiB": say "1.0 MiB" instead.
  if (Math.round(v) >= 1024 && i < BYTE_UNITS.length - 1) return `1.0 ${BYTE_UNITS[i + 1]}`;
  return `${v < 9.95 ? v.toFixed(1) : Math.round(v)} ${BYTE_UNITS[i]}`;
}

/** Bytes per second → "2.0 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** 75 → "1 min 15 s", 3700 → "1 h 2 min", 9 → "9 s". */
export function formatEta(sec: number): string {
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min${sec % 60 ? ` ${sec % 60} s` : ''}`;
  return `${Math.floor(sec / 3600)} h${Math.floor((sec % 3600) / 60) ? ` ${Math.floor((sec % 3600) / 60)} min` : ''}`;
}

/** A pair's bandwidth limit (`bwLimitKBps`, in KiB/s) → "500 KiB/s", or "no limit" for 0. */
export function formatBwLimit(kibPerSec: number): string {
  return kibPerSec > 0 ? `${kibPerSec} ${BWLIMIT_UNIT}` : 'no limit';
}
