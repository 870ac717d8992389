import { z } from 'zod';

/** Sync directions: both ways (default), only local → server, only server → local. */
export const DIRECTIONS = ['two-way', 'send-only', 'receive-only'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/**
 * The largest bandwidth limit, in KiB/s (about 1 TB/s: far beyond any link). rsync
 * takes the limit as `--bwlimit=N` and refuses a value it cannot hold ("is too
 * large": 3.5.0 takes up to 2^53 − 1, older versions keep it in a C int), so the
 * bound stays well inside every version's range.
 */
export const BW_LIMIT_MAX_KBPS = 1_000_000_000;

const BW_LIMIT_RANGE = `must be a whole number of KiB/s from 0 (no limit) to ${BW_LIMIT_MAX_KBPS} (about 1 TB/s)`;

/** A bandwidth limit in KiB/s; 0 means no limit. */
export const BwLimitSchema = z
  .number({ message: BW_LIMIT_RANGE })
  .refine((v) => Number.isInteger(v) && v >= 0 && v <= BW_LIMIT_MAX_KBPS, BW_LIMIT_RANGE);

/**
 * rsync compression of a pair's transfers: `on`, `off`, or `auto` (the default): on when
 * the link's measured round trip is at least COMPRESS_AUTO_MIN_RTT_MS (a slow or distant
 * link, where fewer bytes pay), off on a LAN or loopback (where compressing costs CPU and
 * saves nothing). Never for a local-path remote.
 */
export const COMPRESSION_MODES = ['auto', 'on', 'off'] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];

/** `auto` compresses when the link's round trip (as the pair's ssh session measured it) is at least this. */
export const COMPRESS_AUTO_MIN_RTT_MS = 10;

const absPath = z
  .string()
  .min(1, 'must not be empty')
  .refine((p) => p.startsWith('/'), 'must be an absolute path (start with /)');

export const PairSettingsSchema = z.object({
  /** Stable id: used for the state database file name and CLI references. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lower-case letters, digits and dashes'),
  /** Local directory, absolute. */
  local: absPath,
  /** `[user@]host[:port]:/abs/path` or a local absolute path. */
  remote: z.string().min(1, 'must not be empty'),
  direction: z.enum(DIRECTIONS).default('two-way'),
  /** Extra excludes in gitignore syntax (built-in temp-file excludes always apply). */
  excludes: z.array(z.string()).default([]),
  /** Bandwidth limit in KiB/s; 0 means no limit. */
  bwLimitKBps: BwLimitSchema.default(0),
  /** rsync compression (-z): auto (by the measured link), on or off. */
  compression: z.enum(COMPRESSION_MODES).default('auto'),
  paused: z.boolean().default(false),
  /** When paused for a while: epoch ms at which the pair resumes by itself. */
  pausedUntil: z.number().int().nullable().default(null),
  /** SSH private key to use; default: whatever ssh would pick (~/.ssh/config, agent). */
  identityFile: absPath.optional(),
  /** Full rescan interval in seconds (a safety net behind the watcher). */
  rescanIntervalSec: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .default(3600),
});
export type PairSettings = z.infer<typeof PairSettingsSchema>;
export type PairSettingsInput = z.input<typeof PairSettingsSchema>;

export const SettingsSchema = z.object({
  version: z.literal(1).default(1),
  pairs: z.array(PairSettingsSchema).default([]),
  /** An ssh config file to use instead of ~/.ssh/config (passed as `ssh -F`). */
  sshConfigFile: absPath.optional(),
  /**
   * Milliseconds without a new event before a batch goes (debounce); a burst that
   * goes on goes anyway after 1 s. Local events are reported when a file is closed.
   */
  debounceMs: z.number().int().min(0).max(60_000).default(20),
  /**
   * A file that is written to without being closed (a download, a log kept open) is
   * sent once it has been quiet this long (milliseconds); a file closed after writing
   * goes at once. See docs/sync-semantics.md, "Files still being written".
   */
  writeQuietMs: z.number().int().min(100).max(600_000).default(2000),
  /**
   * The longest a file that never stops changing (a live log) waits: it is then sent
   * as a whole snapshot, again after each such period (milliseconds).
   */
  writeMaxDelayMs: z.number().int().min(500).max(3_600_000).default(30_000),
  /**
   * Seconds between looks at a server that has no inotifywait (the poll watcher: one
   * `find -cnewer` of the tree each time). Shorter finds server changes sooner and costs
   * the server a walk of the tree each time.
   */
  remotePollSec: z.number().int().min(2).max(3600).default(30),
  /** This computer's name in conflict copies and remote locks (default: the host name). */
  deviceName: z.string().min(1).max(64).optional(),
  /** Days the trash keeps replaced and deleted versions. */
  trashDays: z.number().int().min(1).max(3650).default(30),
});
export type Settings = z.infer<typeof SettingsSchema>;

/** Turn a zod error into one line per problem, each naming the field. */
export function describeSettingsError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const field = i.path.length ? i.path.map(String).join('.') : '(settings)';
      return `${field}: ${i.message}`;
    })
    .join('\n');
}
