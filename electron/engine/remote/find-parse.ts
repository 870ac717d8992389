/**
 * Pure parsers of GNU find's `-printf` output (NUL-separated records: nanosecond
 * mtimes, inodes, any file name, as a name can't contain NUL), and the escaping
 * of names that are not valid UTF-8 (they are decoded with replacement characters
 * and reported escaped). Only files, folders and symlinks are kept: sockets,
 * fifos and devices are dropped (sync never transfers them).
 */

import { isUtf8 } from 'node:buffer';
import type { EntryKind, RemoteEntry, RemoteStat } from '../types.js';
import { NulFieldSplitter } from '../proc/split.js';

/** find -printf format of a listing record: type, size, mtime, mode, inode, link target, path below the start. */
export const FIND_LIST_FORMAT = '%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0%P\\0';

/** find -printf format of a stat record: tag F, the path as given, then type, size, mtime, mode, inode, link target. */
export const FIND_STAT_FORMAT = 'F\\0%p\\0%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0';

/**
 * `%T@` (seconds since the epoch with a fraction, e.g. `1732541412.1234567890`)
 * as exact nanoseconds, without going through a float: the fraction is cut
 * (not rounded) to 9 digits. A leading '-' negates the whole value.
 */
export function parseFindTime(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) throw new Error(`unexpected time ${JSON.stringify(s)}`);
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  const v = BigInt(m[2] as string) * 1_000_000_000n + BigInt(frac);
  return m[1] === '-' ? -v : v;
}

/** find's `%y` letter as an EntryKind; null for sockets, fifos, devices, unknown. */
export function findKind(y: string): EntryKind | null {
  return y === 'f' ? 'file' : y === 'd' ? 'dir' : y === 'l' ? 'symlink' : null;
}

/**
 * The six stat fields of a find record (`%y %s %T@ %m %i %l`) as a RemoteStat;
 * null for a type sync doesn't handle (socket, fifo, device).
 */
export function findFieldsToStat(f: readonly string[]): RemoteStat | null {
  if (f.length < 6) throw new Error('short find record');
  const kind = findKind(f[0] as string);
  if (kind === null) return null;
  const size = Number(f[1]);
  const mode = Number.parseInt(f[3] as string, 8);
  const inoText = f[4] as string;
  if (!Number.isFinite(size) || !Number.isFinite(mode) || !/^\d+$/.test(inoText)) {
    throw new Error(`unexpected find record ${JSON.stringify(f)}`);
  }
  return {
    kind,
    size,
    mtimeNs: parseFindTime(f[2] as string),
    mode: mode & 0o7777,
    ino: BigInt(inoText),
    target: kind === 'symlink' ? (f[5] as string) : null,
  };
}

/**
 * Parses listing records (FIND_LIST_FORMAT: 7 NUL-terminated fields, the last
 * `%P`, the path below the start point). `prefix` is the start point relative
 * to the root ('' for the root): entries come out root-relative. The start
 * point itself (empty `%P`) comes out as `prefix`. Sockets, fifos and devices
 * are dropped.
 */
export class FindListParser {
  private readonly splitter = new NulFieldSplitter();
  private fields: string[] = [];
  /** Entries whose own name is not valid UTF-8: their path as decoded and escaped (escapeName). */
  readonly badNames: { path: string; escaped: string; isDir: boolean }[] = [];

  /** `collectBadNames`: fill badNames (the caller takes them out as it goes). */
  constructor(
    private readonly prefix = '',
    private readonly collectBadNames = false,
  ) {}

  push(chunk: Buffer): RemoteEntry[] {
    const out: RemoteEntry[] = [];
    for (const raw of this.splitter.pushRaw(chunk)) {
      this.fields.push(raw.toString('utf8'));
      if (this.fields.length < 7) continue;
      const f = this.fields;
      this.fields = [];
      const stat = findFieldsToStat(f);
      if (stat === null) continue;
      const rel = f[6] as string;
      const path = rel === '' ? this.prefix : this.prefix === '' ? rel : `${this.prefix}/${rel}`;
      if (this.collectBadNames && ownNameNotUtf8(raw)) {
        this.badNames.push({ path, escaped: escapeName(joinRawPath(this.prefix, raw)), isDir: stat.kind === 'dir' });
      }
      out.push({ path, ...stat });
    }
    return out;
  }

  /** Whether a record was cut short (the stream ended inside it). */
  incomplete(): boolean {
    return this.fields.length > 0 || this.splitter.pendingBytes() > 0;
  }
}

/** `prefix/raw` (or raw alone), as bytes. */
export function joinRawPath(prefix: string, raw: Buffer): Buffer {
  return prefix === '' ? raw : Buffer.concat([Buffer.from(`${prefix}/`), raw]);
}

/**
 * Whether the last component of a path's bytes is not valid UTF-8 while the folders
 * above it are: such an entry is reported once (what is below it is covered by it).
 */
export function ownNameNotUtf8(path: Buffer): boolean {
  if (isUtf8(path)) return false;
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 || isUtf8(path.subarray(0, slash));
}

/**
 * A name's bytes made readable: valid UTF-8 as it is, each other byte (and each
 * control character) as `\xNN`. `caf\xe9.txt` is a Latin-1 `café.txt`.
 */
export function escapeName(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let n = 0;
    if (b >= 0x20 && b !== 0x7f) {
      // The shortest valid UTF-8 sequence starting here (1 to 4 bytes), if any.
      for (let len = 1; len <= 4 && i + len <= bytes.length; len++) {
        if (isUtf8(bytes.subarray(i, i + len))) {
          n = len;
          break;
        }
      }
    }
    if (n === 0) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += bytes.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

export type FindStatRecord =
  | { tag: 'F'; path: string; stat: RemoteStat | null }
  /** The path does not exist. */
  | { tag: 'M'; path: string }
  /** The path can't be looked at (a parent folder is not searchable). */
  | { tag: 'E'; path: string };

/**
 * Parses statRemote's tagged records: `F\0<path>\0` + the 6 stat fields
 * (FIND_STAT_FORMAT), `M\0<path>\0` (missing), `E\0<path>\0` (no access).
 */
export class FindStatParser {
  private readonly splitter = new NulFieldSplitter();
  private fields: string[] = [];

  push(chunk: Buffer): FindStatRecord[] {
    const out: FindStatRecord[] = [];
    for (const field of this.splitter.push(chunk)) {
      this.fields.push(field);
      const tag = this.fields[0];
      if (tag !== 'F' && tag !== 'M' && tag !== 'E')
        throw new Error(`unexpected stat record tag ${JSON.stringify(tag)}`);
      const need = tag === 'F' ? 8 : 2;
      if (this.fields.length < need) continue;
      const f = this.fields;
      this.fields = [];
      if (tag === 'F') out.push({ tag, path: f[1] as string, stat: findFieldsToStat(f.slice(2)) });
      else out.push({ tag, path: f[1] as string });
    }
    return out;
  }
}
