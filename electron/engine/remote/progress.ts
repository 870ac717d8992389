/**
 * Pure parsers for rsync's output (kept apart from the runner so they are
 * tested on recorded samples): --info=progress2 lines, --out-format item lines,
 * --stats lines.
 */

import { unescapeRsyncName } from '../errors.js';

/** One item rsync changed: sent, created, deleted, or attributes updated. */
export interface TransferredItem {
  /** Relative POSIX path, no trailing slash. */
  path: string;
  /** rsync's %i itemize string, e.g. '>f+++++++++', '<f.st......', 'cd+++++++++', '*deleting'. */
  itemize: string;
  /** Size in bytes (%l); 0 for deletions. */
  size: number;
  deleted: boolean;
}

/**
 * Item lines start with this marker. rsync escapes control characters in
 * names (a newline is `\#012`), so every real line break in its output ends a
 * line, and a name can never start a line of its own.
 */
export const ITEM_MARKER = '<<lipsync>>';
/** The --out-format value. %n is the name relative to the transfer root, '/'-terminated for directories. */
export const OUT_FORMAT = `${ITEM_MARKER}%i|%l|%n`;

/** Parses one --out-format line (without its line break); null if it is not an item line. */
export function parseItemLine(line: string): TransferredItem | null {
  if (!line.startsWith(ITEM_MARKER)) return null;
  const body = line.slice(ITEM_MARKER.length);
  const a = body.indexOf('|');
  const b = a === -1 ? -1 : body.indexOf('|', a + 1);
  if (a === -1 || b === -1) return null;
  const itemize = body.slice(0, a).trimEnd();
  const sizeText = body.slice(a + 1, b).replace(/[,.']/g, '');
  let name = unescapeRsyncName(body.slice(b + 1));
  if (name.length > 1 && name.endsWith('/')) name = name.slice(0, -1);
  if (name.startsWith('./')) name = name.slice(2);
  if (name === '' || itemize === '') return null;
  const size = /^\d+$/.test(sizeText) ? Number(sizeText) : 0;
  const deleted = itemize.startsWith('*deleting');
  return { path: name, itemize, size: deleted ? 0 : size, deleted };
}

export interface ProgressInfo {
  /** Bytes transferred so far in this run. */
  bytes: number;
  percent: number | null;
  /** Bytes per second. */
  rateBps: number;
  /** Time left (or, on a file's last line, time taken) as rsync prints it, e.g. '0:00:01'. */
  eta: string | null;
  /** xfr#N: files transferred so far, when shown. */
  filesDone: number | null;
  /** to-chk=R/T (or ir-chk): files still to check and the total known so far, when shown. */
  toCheck: number | null;
  total: number | null;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** '1,234,567' / '1.23M' / '1234' to a number of bytes. */
function parseSize(s: string): number | null {
  const m = /^([\d,.']+)([KMGTP]?)$/i.exec(s);
  if (!m) return null;
  const digits = m[1] as string;
  const unit = (m[2] as string).toUpperCase();
  if (unit === '') {
    const n = Number(digits.replace(/[,.']/g, ''));
    return Number.isFinite(n) ? n : null;
  }
  // With a unit (-h), '.' or ',' is the decimal separator.
  const n = Number(digits.replace(/'/g, '').replace(',', '.'));
  return Number.isFinite(n) ? Math.round(n * (UNITS[unit] ?? 1)) : null;
}

function parseRate(s: string): number | null {
  const m = /^([\d.,]+)([kKMGTP]?)B\/s$/.exec(s);
  if (!m) return null;
  const n = Number((m[1] as string).replace(',', '.'));
  if (!Number.isFinite(n)) return null;
  return Math.round(n * (UNITS[(m[2] as string).toUpperCase()] ?? 1));
}

/**
 * Parses a --info=progress2 line such as
 * `      1,234,567  45%   12.34MB/s    0:00:01 (xfr#5, to-chk=10/20)`;
 * null for anything else.
 */
export function parseProgressLine(line: string): ProgressInfo | null {
  const m = /^\s*([\d,.']+[KMGTP]?)\s+(\d{1,3})%\s+(\S+B\/s)\s+(\d+:\d{2}(?::\d{2})?)?\s*(?:\((.*)\))?\s*$/.exec(line);
  if (!m) return null;
  const bytes = parseSize(m[1] as string);
  if (bytes === null) return null;
  const rate = parseRate(m[3] as string) ?? 0;
  let filesDone: number | null = null;
  let toCheck: number | null = null;
  let total: number | null = null;
  const extra = m[5];
  if (extra !== undefined) {
    const x = /xfr#(\d+)/.exec(extra);
    if (x) filesDone = Number(x[1]);
    const c = /(?:to|ir)-chk=(\d+)\/(\d+)/.exec(extra);
    if (c) {
      toCheck = Number(c[1]);
      total = Number(c[2]);
    }
  }
  return { bytes, percent: Number(m[2]), rateBps: rate, eta: m[4] ?? null, filesDone, toCheck, total };
}

export interface RsyncStats {
  literalBytes: number | null;
  matchedBytes: number | null;
  filesTransferred: number | null;
  deletedFiles: number | null;
  totalSentBytes: number | null;
}

/** Reads one --stats line into `stats`; returns whether it was a stats line. */
export function parseStatsLine(line: string, stats: RsyncStats): boolean {
  const m =
    /^(Literal data|Matched data|Number of regular files transferred|Number of files transferred|Number of deleted files|Total bytes sent): ([\d,.']+)/.exec(
      line.trim(),
    );
  if (!m) return false;
  const n = Number((m[2] as string).replace(/[,.']/g, ''));
  switch (m[1]) {
    case 'Literal data':
      stats.literalBytes = n;
      break;
    case 'Matched data':
      stats.matchedBytes = n;
      break;
    case 'Number of regular files transferred':
    case 'Number of files transferred':
      stats.filesTransferred = n;
      break;
    case 'Number of deleted files':
      stats.deletedFiles = n;
      break;
    case 'Total bytes sent':
      stats.totalSentBytes = n;
      break;
  }
  return true;
}

export function emptyStats(): RsyncStats {
  return { literalBytes: null, matchedBytes: null, filesTransferred: null, deletedFiles: null, totalSentBytes: null };
}
