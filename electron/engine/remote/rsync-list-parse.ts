/**
 * Pure parsers of `rsync --list-only` output, the listing used when the server has
 * no GNU find. Whole-second mtimes, no inode. Names with control characters come
 * escaped as `\#ooo` (undone by unescapeRsyncName); a symlink's line is
 * `name -> target`, which is ambiguous when a name or target contains " -> ": the
 * split whose target has the symlink's size (rsync prints a symlink's size as its
 * target's length) wins. Times are printed in the client's local time zone, so the
 * local rsync runs with TZ=UTC0 (rsync-list.ts, rsyncListEnv).
 */

import type { EntryKind, RemoteStat } from '../types.js';
import { unescapeRsyncName } from '../errors.js';

export interface RsyncListEntry {
  /** The name as listed (unescaped), relative to the listed folder; '.' is the folder itself. */
  name: string;
  /** null for sockets, fifos and devices. */
  stat: RemoteStat | null;
}

const RSYNC_LINE =
  /^([-dlpscbD])([-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) +([\d,.]+) (\d{4,})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (.*)$/;

/** Permission bits of an `ls -l` style mode string's last nine characters (`rwsr-xr-t`...). */
export function parseModeString(perms: string): number {
  if (perms.length !== 9) throw new Error(`bad mode string ${perms}`);
  let mode = 0;
  const bit = (i: number, v: number) => (perms[i] !== '-' ? v : 0);
  mode |= bit(0, 0o400) | bit(1, 0o200) | bit(3, 0o040) | bit(4, 0o020) | bit(6, 0o004) | bit(7, 0o002);
  const x = (c: string | undefined, xbit: number, special: number, lower: string, upper: string): number =>
    c === 'x' ? xbit : c === lower ? xbit | special : c === upper ? special : 0;
  mode |= x(perms[2], 0o100, 0o4000, 's', 'S');
  mode |= x(perms[5], 0o010, 0o2000, 's', 'S');
  mode |= x(perms[8], 0o001, 0o1000, 't', 'T');
  return mode;
}

/**
 * One line of `rsync --list-only` output (rsync >= 3.0:
 * `-rw-r--r--      1,234,567 2024/11/25 13:30:12 name`, sizes with or
 * without thousands separators), with times printed in UTC (run rsync with
 * TZ=UTC0). Returns null for a line that is not a listing line.
 *
 * A symlink's line is `name -> target`; when the text holds several " -> ",
 * the split whose unescaped target is `size` bytes long (rsync's size for a
 * symlink) is taken, else the first; `isKnownName` (e.g. "is one of the names
 * asked for") takes precedence when given. Names and targets are unescaped (`\#ooo`).
 */
export function parseRsyncListLine(line: string, isKnownName?: (name: string) => boolean): RsyncListEntry | null {
  const m = RSYNC_LINE.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
  if (!m) return null;
  const type = m[1] as string;
  const size = Number((m[3] as string).replace(/[,.]/g, ''));
  const ms = Date.UTC(Number(m[4]), Number(m[5]) - 1, Number(m[6]), Number(m[7]), Number(m[8]), Number(m[9]));
  if (!Number.isFinite(size) || !Number.isFinite(ms)) return null;
  const rest = m[10] as string;
  const kind: EntryKind | null = type === '-' ? 'file' : type === 'd' ? 'dir' : type === 'l' ? 'symlink' : null;
  let name = rest;
  let target: string | null = null;
  if (kind === 'symlink') {
    const splits: number[] = [];
    for (let i = rest.indexOf(' -> '); i !== -1; i = rest.indexOf(' -> ', i + 1)) splits.push(i);
    if (splits.length > 0) {
      const pick =
        (isKnownName && splits.find((i) => isKnownName(unescapeRsyncName(rest.slice(0, i))))) ??
        splits.find((i) => Buffer.byteLength(unescapeRsyncName(rest.slice(i + 4))) === size) ??
        (splits[0] as number);
      name = rest.slice(0, pick);
      target = unescapeRsyncName(rest.slice(pick + 4));
    } else {
      target = '';
    }
  }
  name = unescapeRsyncName(name);
  if (kind === null) return { name, stat: null };
  return {
    name,
    stat: {
      kind,
      size,
      mtimeNs: BigInt(ms) * 1_000_000n,
      mode: parseModeString(m[2] as string),
      ino: null,
      target,
    },
  };
}

/**
 * The bytes of the name in a `rsync --list-only` line (for a symlink, before its
 * first " -> "), its `\#ooo` escapes undone; null for another line. The line is
 * read as Latin-1, so every byte is one character and the ASCII columns match.
 */
export function rsyncListRawName(line: Buffer): Buffer | null {
  const m = RSYNC_LINE.exec(line.toString('latin1'));
  if (!m) return null;
  let rest = m[10] as string;
  if (m[1] === 'l' && rest.includes(' -> ')) rest = rest.slice(0, rest.indexOf(' -> '));
  rest = rest.replace(/\\#([0-7]{3})/g, (all, oct: string) => {
    const v = Number.parseInt(oct, 8);
    return v <= 0xff ? String.fromCharCode(v) : all;
  });
  return Buffer.from(rest, 'latin1');
}
