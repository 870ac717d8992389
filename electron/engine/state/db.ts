/**
 * The per-pair state database: the last synced state of every path (the base of the
 * next three-way comparison). One SQLite file per pair, opened with better-sqlite3.
 *
 * Nothing here materializes the whole tree: whole-tree reads stream through
 * `iterateDescendants`, and subtree moves/deletes are single range statements.
 *
 * Paths are relative POSIX paths ('' is the root). SQLite compares TEXT with the
 * BINARY collation, i.e. bytewise over UTF-8, so the descendants of `dir` are exactly
 * the rows with `dir/` < path < `dir0` ('0' is the byte after '/').
 *
 * One file (over 800 lines) on purpose: every statement of the state database is here,
 * next to the schema and migrations it depends on, so a change to a table is checked
 * against all its queries in one place. That includes the cycle's scratch tables (cand,
 * rscan, rtree: temp tables of the same connection); if they grow further, they are the
 * part to move to a module of their own (state/scratch.ts), the base's statements staying.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Entry, EntryKind, RemoteEntry } from '../types.js';

type Db = Database.Database;
type Stmt = Database.Statement;

/** A row of `entries` as read with safeIntegers (every INTEGER is a bigint). */
interface EntryRow {
  path: string;
  parent: string;
  name: string;
  kind: string | null;
  size: bigint | null;
  mtime_ns: bigint | null;
  mode: bigint | null;
  ino: bigint | null;
  target: string | null;
  hash: string | null;
  synced_at_ns: bigint | null;
  remote_size: bigint | null;
  remote_mtime_ns: bigint | null;
  remote_ino: bigint | null;
  remote_mode: bigint | null;
}

/** A damaged database that openOrRebuild moved aside. */
export interface DamagedDb {
  /** Where the damaged file is now. */
  movedTo: string;
  /** SQLite's message ("file is not a database", "database disk image is malformed"). */
  reason: string;
}

/** SQLite's answer for a file that is not (any more) a readable database. */
export function isDamagedDbError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(?:NOTADB|CORRUPT)/.test(code);
}

function ownerOnly(file: string): void {
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    // not there (yet)
  }
}

/** A conflict: both sides changed one path differently; both versions were kept. */
export interface ConflictRecord {
  id: number;
  path: string;
  copyPath: string;
  local: { size: number; mtime: number; origin: string };
  remote: { size: number; mtime: number; origin: string };
  createdAt: number;
  resolvedAt: number | null;
  resolution: string | null;
}

interface ConflictRow {
  id: number;
  path: string;
  copy_path: string;
  local_size: number;
  local_mtime: number;
  local_origin: string;
  remote_size: number;
  remote_mtime: number;
  remote_origin: string;
  created_at: number;
  resolved_at: number | null;
  resolution: string | null;
}

function rowToConflict(r: ConflictRow): ConflictRecord {
  return {
    id: r.id,
    path: r.path,
    copyPath: r.copy_path,
    local: { size: r.local_size, mtime: r.local_mtime, origin: r.local_origin },
    remote: { size: r.remote_size, mtime: r.remote_mtime, origin: r.remote_origin },
    createdAt: r.created_at,
    resolvedAt: r.resolved_at,
    resolution: r.resolution,
  };
}

/** Schema migrations; migration i brings the schema from version i to i + 1. */
const MIGRATIONS: ((db: Db) => void)[] = [
  (db) => {
    db.exec(`
      CREATE TABLE entries (
        path TEXT PRIMARY KEY NOT NULL,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT,
        size INTEGER,
        mtime_ns INTEGER,
        mode INTEGER,
        ino INTEGER,
        target TEXT,
        hash TEXT,
        synced_at_ns INTEGER,
        remote_size INTEGER,
        remote_mtime_ns INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX entries_parent ON entries(parent);
      CREATE INDEX entries_ino ON entries(ino);
    `);
  },
  (db) => {
    // Two-way sync: the remote inode (rename detection on the server) and the conflict log.
    db.exec(`
      ALTER TABLE entries ADD COLUMN remote_ino INTEGER;
      CREATE INDEX entries_remote_ino ON entries(remote_ino);
      CREATE TABLE conflicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL,
        copy_path TEXT NOT NULL,
        local_size INTEGER NOT NULL,
        local_mtime INTEGER NOT NULL,
        local_origin TEXT NOT NULL,
        remote_size INTEGER NOT NULL,
        remote_mtime INTEGER NOT NULL,
        remote_origin TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        resolved_at INTEGER,
        resolution TEXT
      );
    `);
  },
  (db) => {
    // The server's permission bits of each path: a directory's mode there is compared with them.
    db.exec('ALTER TABLE entries ADD COLUMN remote_mode INTEGER');
  },
  (db) => {
    // Files a push is sending (rule W5): the local size and mtime when decided, until recorded.
    db.exec('CREATE TABLE sending (path TEXT PRIMARY KEY NOT NULL, size INTEGER, mtime_ns INTEGER) WITHOUT ROWID');
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Page cache of the main and of the TEMP database, KiB each (SQLite's default). */
const CACHE_KIB = 2000;

/** The parent directory of a relative path ('' for top-level names and for the root). */
function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

function nameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Bounds of the descendants of `dir` (exclusive on both ends); for the root, every path but ''. */
function descendantRange(dir: string): [string, string] | null {
  return dir === '' ? null : [dir + '/', dir + '0'];
}

function isDescendantOrSelf(p: string, dir: string): boolean {
  return dir === '' || p === dir || p.startsWith(dir + '/');
}

function toNumber(v: bigint | null): number {
  return v === null ? 0 : Number(v);
}

function rowToEntry(r: EntryRow): Entry {
  return {
    path: r.path,
    kind: (r.kind ?? 'file') as EntryKind,
    size: toNumber(r.size),
    mtimeNs: r.mtime_ns ?? 0n,
    mode: toNumber(r.mode),
    ino: r.ino ?? 0n,
    target: r.target,
    hash: r.hash,
    syncedAtNs: r.synced_at_ns ?? 0n,
    remoteSize: r.remote_size === null ? null : Number(r.remote_size),
    remoteMtimeNs: r.remote_mtime_ns,
    remoteIno: r.remote_ino,
    remoteMode: r.remote_mode === null ? null : Number(r.remote_mode),
  };
}

export class StateDb {
  /** count()'s last answer. */
  private counted: { n: number; changes: number; at: number } | null = null;
  private readonly stmts: {
    get: Stmt;
    children: Stmt;
    childrenOfRoot: Stmt;
    byInode: Stmt;
    upsert: Stmt;
    deleteOne: Stmt;
    deleteRange: Stmt;
    deleteAll: Stmt;
    moveSelf: Stmt;
    moveDescendants: Stmt;
    count: Stmt;
    totalChanges: Stmt;
    getMeta: Stmt;
    setMeta: Stmt;
  };

  private constructor(private readonly db: Db) {
    const prep = (sql: string, safe = true): Stmt => db.prepare(sql).safeIntegers(safe);
    this.stmts = {
      get: prep('SELECT * FROM entries WHERE path = ?'),
      children: prep('SELECT * FROM entries WHERE parent = ? ORDER BY path'),
      // The root row ('' if ever stored) has parent '' too; it is not its own child.
      childrenOfRoot: prep("SELECT * FROM entries WHERE parent = '' AND path <> '' ORDER BY path"),
      byInode: prep('SELECT * FROM entries WHERE ino = ? ORDER BY path'),
      upsert: prep(
        `INSERT OR REPLACE INTO entries
           (path, parent, name, kind, size, mtime_ns, mode, ino, target, hash, synced_at_ns, remote_size, remote_mtime_ns, remote_ino, remote_mode)
         VALUES
           (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteOne: prep('DELETE FROM entries WHERE path = ?'),
      deleteRange: prep('DELETE FROM entries WHERE path > ? AND path < ?'),
      deleteAll: prep('DELETE FROM entries'),
      moveSelf: prep('UPDATE entries SET path = @to, parent = @toParent, name = @toName WHERE path = @from'),
      // length()/substr() count characters on both sides, so the prefix swap is exact
      // whatever the UTF-8 (or UTF-16) lengths are. Every descendant's parent also starts
      // with `from`, so it gets the same prefix swap.
      moveDescendants: prep(
        `UPDATE entries SET
           path = @to || substr(path, length(@from) + 1),
           parent = @to || substr(parent, length(@from) + 1)
         WHERE path > @lo AND path < @hi`,
      ),
      count: prep('SELECT count(*) AS n FROM entries', false),
      totalChanges: prep('SELECT total_changes() AS n', false),
      getMeta: prep('SELECT value FROM meta WHERE key = ?', false),
      setMeta: prep('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)', false),
    };
  }

  /**
   * Opens (creating it and its directories if needed) and migrates the database at `file`.
   * The file and its WAL and shared-memory files are readable by their owner only (0600).
   */
  static open(file: string): StateDb {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Created 0600 before SQLite opens it (SQLite creates -wal and -shm with the main file's mode).
    fs.closeSync(fs.openSync(file, 'a', 0o600));
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      for (const f of [file, `${file}-wal`, `${file}-shm`]) ownerOnly(f);
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      // better-sqlite3 builds SQLite with a 16 MB page cache per database (SQLITE_DEFAULT_CACHE_SIZE
      // =-16000); SQLite's own default is 2 MB. With 100,000 entries the database file is ~20 MB
      // and the cache filled up: malloc'd pages that stayed with the idle daemon (its malloc heap
      // in use went from ~28 MB to ~11 MB with 2 MB caches). The OS page cache holds the file
      // anyway. TEMP (the cycle's cand and rscan tables) is capped the same way.
      db.pragma(`cache_size = -${CACHE_KIB}`);
      db.pragma(`temp.cache_size = -${CACHE_KIB}`);
      StateDb.migrate(db);
      return new StateDb(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Opens the database at `file`; when it is damaged (not a database any more, or
   * corrupt: a power loss, a disk error), moves it (with its WAL and shared-memory
   * files) aside to `FILE.damaged-TIMESTAMP` and starts an empty one. The pair then
   * compares both sides as a first sync does: nothing is deleted, and files that
   * differ are kept as conflict copies. Other errors (a newer schema, no permission)
   * are thrown as they are.
   */
  static openOrRebuild(file: string, now = new Date()): { db: StateDb; damaged?: DamagedDb } {
    try {
      return { db: StateDb.open(file) };
    } catch (e) {
      if (!isDamagedDbError(e)) throw e;
      const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      let movedTo = `${file}.damaged-${stamp}`;
      for (let n = 1; fs.existsSync(movedTo); n++) movedTo = `${file}.damaged-${stamp}.${n}`;
      fs.renameSync(file, movedTo);
      for (const ext of ['-wal', '-shm']) {
        try {
          fs.renameSync(`${file}${ext}`, `${movedTo}${ext}`);
        } catch {
          // not there
        }
      }
      return { db: StateDb.open(file), damaged: { movedTo, reason: (e as Error).message } };
    }
  }

  private static migrate(db: Db): void {
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)');
    db.transaction(() => {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
        { value: string } | undefined;
      const version = row ? Number(row.value) : 0;
      if (!Number.isInteger(version) || version < 0) {
        throw new Error(`State database has an invalid schema_version: ${row?.value}`);
      }
      if (version > MIGRATIONS.length) {
        throw new Error(
          `State database schema version ${version} is newer than this lipsync supports (${MIGRATIONS.length}).`,
        );
      }
      for (let v = version; v < MIGRATIONS.length; v++) MIGRATIONS[v]!(db);
      if (version !== MIGRATIONS.length) {
        db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(
          String(MIGRATIONS.length),
        );
      }
    }).immediate();
  }

  get(p: string): Entry | undefined {
    const row = this.stmts.get.get(p) as EntryRow | undefined;
    return row ? rowToEntry(row) : undefined;
  }

  /** The direct children of one directory, ordered by path. */
  children(dir: string): Entry[] {
    const rows = (dir === '' ? this.stmts.childrenOfRoot.all() : this.stmts.children.all(dir)) as EntryRow[];
    return rows.map(rowToEntry);
  }

  /**
   * Every entry below `dir` at any depth (not `dir` itself), in path order, streamed
   * from SQLite. While the iterator is open the connection cannot write: finish or
   * `return()` it (a `break` out of for-of does) before calling a mutating method.
   * Several iterators may be open at once (each gets its own statement).
   */
  *iterateDescendants(dir: string): IterableIterator<Entry> {
    const range = descendantRange(dir);
    const rows = (
      range
        ? this.db
            .prepare('SELECT * FROM entries WHERE path > ? AND path < ? ORDER BY path')
            .safeIntegers(true)
            .iterate(range[0], range[1])
        : this.db.prepare("SELECT * FROM entries WHERE path > '' ORDER BY path").safeIntegers(true).iterate()
    ) as IterableIterator<EntryRow>;
    for (const row of rows) yield rowToEntry(row);
  }

  /** Whether the base records anything strictly below `dir`. */
  hasDescendants(dir: string): boolean {
    const range = descendantRange(dir);
    const row = range
      ? this.db.prepare('SELECT 1 FROM entries WHERE path > ? AND path < ? LIMIT 1').get(range[0], range[1])
      : this.db.prepare("SELECT 1 FROM entries WHERE path > '' LIMIT 1").get();
    return row !== undefined;
  }

  /** The entries recorded with inode `ino` (hard links give several). */
  byInode(ino: bigint): Entry[] {
    return (this.stmts.byInode.all(ino) as EntryRow[]).map(rowToEntry);
  }

  /** Inserts or replaces the entries, in one transaction. */
  upsert(entries: Entry[]): void {
    const stmt = this.stmts.upsert;
    this.db.transaction(() => {
      for (const e of entries) {
        // Positional parameters: binding by name cost about a third more per row.
        stmt.run(
          e.path,
          parentOf(e.path),
          nameOf(e.path),
          e.kind,
          e.size,
          e.mtimeNs,
          e.mode,
          e.ino,
          e.target,
          e.hash,
          e.syncedAtNs,
          e.remoteSize,
          e.remoteMtimeNs,
          e.remoteIno ?? null,
          e.remoteMode ?? null,
        );
      }
    })();
  }

  /** Removes `p` and everything below it; returns the number of rows removed. */
  deleteTree(p: string): number {
    return this.db.transaction(() => this.deleteTreeInTx(p))();
  }

  private deleteTreeInTx(p: string): number {
    if (p === '') return this.stmts.deleteAll.run().changes;
    const [lo, hi] = descendantRange(p)!;
    return this.stmts.deleteOne.run(p).changes + this.stmts.deleteRange.run(lo, hi).changes;
  }

  /**
   * Moves the entry at `from` and all its descendants to `to`, in one transaction.
   * Whatever was recorded at `to` (and below it) is replaced. Moving a path into its
   * own subtree is impossible on a file system and throws.
   */
  renameTree(from: string, to: string): void {
    if (from === to) return;
    if (from === '' || to === '') throw new Error('renameTree: cannot move the root');
    if (isDescendantOrSelf(to, from)) throw new Error(`renameTree: cannot move "${from}" into itself ("${to}")`);
    this.db.transaction(() => {
      if (isDescendantOrSelf(from, to)) {
        // Moving up over an ancestor: the target subtree contains the source. First park the
        // source under a prefix no real path can have (a leading '/'), so that clearing the
        // target and moving back never collide with rows still to be moved.
        const parked = '/' + from;
        this.move(from, parked);
        this.deleteTreeInTx(to);
        this.move(parked, to);
      } else {
        this.deleteTreeInTx(to);
        this.move(from, to);
      }
    })();
  }

  /** Moves `from` and its descendants to `to`; `to` and its subtree must be free. */
  private move(from: string, to: string): void {
    this.stmts.moveSelf.run({ from, to, toParent: parentOf(to), toName: nameOf(to) });
    const [lo, hi] = descendantRange(from)!;
    this.stmts.moveDescendants.run({ from, to, lo, hi });
  }

  /**
   * The number of entries. Counting reads the whole table (~5 ms at 1,000,000 entries), and the
   * status is asked for every 200 ms or so while a sync runs (the bench's wait, the UI): with
   * `staleMs`, the last count is given again while it is younger than that, and always while
   * nothing was written since (SQLite's total_changes(), any table of this connection).
   */
  count(staleMs = 0): number {
    const changes = Number((this.stmts.totalChanges.get() as { n: number }).n);
    const c = this.counted;
    if (c && (c.changes === changes || Date.now() - c.at < staleMs)) return c.n;
    const n = Number((this.stmts.count.get() as { n: number }).n);
    this.counted = { n, changes, at: Date.now() };
    return n;
  }

  /** The entries whose remote side had inode `ino` after their last sync. */
  byRemoteInode(ino: bigint): Entry[] {
    return (
      this.db
        .prepare('SELECT * FROM entries WHERE remote_ino = ? ORDER BY path')
        .safeIntegers(true)
        .all(ino) as EntryRow[]
    ).map(rowToEntry);
  }

  /** Number of files (not directories) recorded: the base of the mass-delete threshold. */
  fileCount(): number {
    return Number((this.db.prepare("SELECT count(*) AS n FROM entries WHERE kind <> 'dir'").get() as { n: number }).n);
  }

  // ------------------------------------------------------------ conflicts

  addConflict(c: Omit<ConflictRecord, 'id' | 'resolvedAt' | 'resolution'>): number {
    const r = this.db
      .prepare(
        `INSERT INTO conflicts (path, copy_path, local_size, local_mtime, local_origin, remote_size, remote_mtime, remote_origin, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        c.path,
        c.copyPath,
        c.local.size,
        c.local.mtime,
        c.local.origin,
        c.remote.size,
        c.remote.mtime,
        c.remote.origin,
        c.createdAt,
      );
    return Number(r.lastInsertRowid);
  }

  openConflicts(): ConflictRecord[] {
    return (
      this.db.prepare('SELECT * FROM conflicts WHERE resolved_at IS NULL ORDER BY id').all() as ConflictRow[]
    ).map(rowToConflict);
  }

  getConflict(id: number): ConflictRecord | undefined {
    const r = this.db.prepare('SELECT * FROM conflicts WHERE id = ?').get(id) as ConflictRow | undefined;
    return r ? rowToConflict(r) : undefined;
  }

  resolveConflict(id: number, resolution: string): void {
    this.db
      .prepare('UPDATE conflicts SET resolved_at = ?, resolution = ? WHERE id = ?')
      .run(Date.now(), resolution, id);
  }

  // ------------------------------------------------------------ per-cycle scratch tables
  // Candidates of one sync cycle and a full remote listing live in TEMP tables, so a
  // cycle over a million paths never holds them in JS memory.

  private scratchReady = false;
  private candInsert: Database.Statement | null = null;

  private scratch(): void {
    if (this.scratchReady) return;
    this.db.exec(`
      CREATE TEMP TABLE IF NOT EXISTS cand (path TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
      CREATE TEMP TABLE IF NOT EXISTS rscan (
        path TEXT PRIMARY KEY NOT NULL, kind TEXT, size INTEGER, mtime_ns INTEGER, mode INTEGER, ino INTEGER, target TEXT
      ) WITHOUT ROWID;
    `);
    this.scratchReady = true;
  }

  candAdd(paths: Iterable<string>): void {
    this.scratch();
    const st = (this.candInsert ??= this.db.prepare('INSERT OR IGNORE INTO cand (path) VALUES (?)'));
    this.db.transaction(() => {
      for (const p of paths) st.run(p);
    })();
  }

  /** Adds every recorded path strictly below `dir` as a candidate. */
  candAddDescendants(dir: string): void {
    this.scratch();
    const range = descendantRange(dir);
    if (range)
      this.db
        .prepare('INSERT OR IGNORE INTO cand (path) SELECT path FROM entries WHERE path > ? AND path < ?')
        .run(range[0], range[1]);
    else this.db.prepare("INSERT OR IGNORE INTO cand (path) SELECT path FROM entries WHERE path > ''").run();
  }

  /** Candidates at or below `dir` that the base knows as a file (or symlink). */
  candBaseFileCountIn(dir: string): number {
    this.scratch();
    const range = descendantRange(dir) ?? ['', '\u{10FFFF}'];
    const row = this.db
      .prepare(
        "SELECT count(*) AS n FROM cand c CROSS JOIN entries e ON e.path = c.path WHERE e.kind <> 'dir' AND (c.path = ? OR (c.path > ? AND c.path < ?))",
      )
      .get(dir, range[0], range[1]) as { n: number };
    return Number(row.n);
  }

  /** Drops `dir` and every candidate below it (a folder moved away as a whole: nothing there to decide). */
  candDropTree(dir: string): void {
    this.scratch();
    this.db.prepare('DELETE FROM cand WHERE path = ?').run(dir);
    const range = descendantRange(dir);
    if (range) this.db.prepare('DELETE FROM cand WHERE path > ? AND path < ?').run(range[0], range[1]);
  }

  candCount(): number {
    this.scratch();
    return Number((this.db.prepare('SELECT count(*) AS n FROM cand').get() as { n: number }).n);
  }

  /** Candidates the base knows as a file (or symlink): the most a cycle could delete. */
  candBaseFileCount(): number {
    this.scratch();
    return Number(
      (
        this.db
          .prepare("SELECT count(*) AS n FROM cand c CROSS JOIN entries e ON e.path = c.path WHERE e.kind <> 'dir'")
          .get() as { n: number }
      ).n,
    );
  }

  /** The next `limit` candidates after `after`, in path order (parents before children); removed from the table. */
  candTake(limit: number): string[] {
    this.scratch();
    const rows = this.db.prepare('SELECT path FROM cand ORDER BY path LIMIT ?').all(limit) as { path: string }[];
    const del = this.db.prepare('DELETE FROM cand WHERE path = ?');
    this.db.transaction(() => {
      for (const r of rows) del.run(r.path);
    })();
    return rows.map((r) => r.path);
  }

  candClear(): void {
    this.scratch();
    this.db.exec('DELETE FROM cand');
  }

  rscanClear(): void {
    this.scratch();
    this.db.exec('DELETE FROM rscan');
  }

  rscanInsert(rows: RemoteEntry[]): void {
    this.scratch();
    const st = this.db.prepare(
      'INSERT OR REPLACE INTO rscan (path, kind, size, mtime_ns, mode, ino, target) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const r of rows) st.run(r.path, r.kind, r.size, r.mtimeNs, r.mode, r.ino, r.target);
    })();
  }

  /** The rscan rows after `after` ('' for the first), in path order; `limit` of them. */
  rscanPage(after: string, limit: number): RemoteEntry[] {
    this.scratch();
    const rows = this.db
      .prepare('SELECT * FROM rscan WHERE path > ? ORDER BY path LIMIT ?')
      .safeIntegers(true)
      .all(after, limit) as ScanRow[];
    return rows.map(fromScanRow);
  }

  /**
   * After a full remote listing of the subtree `dir` went into rscan: every path that
   * is new, changed (kind, size, mtime to the second, target, a directory's mode) or gone on the server
   * relative to the base becomes a candidate. Returns how many were added.
   */
  candFromRemoteScan(dir: string, recursive = true): number {
    this.scratch();
    const before = this.candCount();
    const range = descendantRange(dir);
    let inRange: string;
    let params: Record<string, string>;
    if (!recursive) {
      inRange = "e.parent = @dir AND e.path <> ''";
      params = { dir };
    } else {
      inRange = range ? 'e.path > @lo AND e.path < @hi' : "e.path > ''";
      params = range ? { lo: range[0], hi: range[1] } : {};
    }
    this.db
      .prepare(
        `INSERT OR IGNORE INTO cand (path)
         SELECT r.path FROM rscan r LEFT JOIN entries e ON e.path = r.path
         WHERE e.path IS NULL OR e.kind IS NOT r.kind
            OR (r.kind = 'file' AND (e.remote_size IS NOT r.size OR e.remote_mtime_ns IS NULL
                 OR (CASE WHEN e.remote_mtime_ns % 1000000000 = 0 OR r.mtime_ns % 1000000000 = 0
                          THEN e.remote_mtime_ns / 1000000000 <> r.mtime_ns / 1000000000
                          ELSE e.remote_mtime_ns <> r.mtime_ns END)
                 OR (e.mode & 73) <> (r.mode & 73)))
            OR (r.kind = 'symlink' AND e.target IS NOT r.target)
            OR (r.kind = 'dir' AND COALESCE(e.remote_mode, e.mode) IS NOT r.mode)`,
      )
      .run();
    this.db
      .prepare(
        `INSERT OR IGNORE INTO cand (path) SELECT e.path FROM entries e LEFT JOIN rscan r ON r.path = e.path WHERE r.path IS NULL AND ${inRange}`,
      )
      .run(params);
    if (!recursive) {
      // One level listed: a recorded folder that is gone (or is a folder no more) takes what is
      // recorded below it along, as a recursive listing would (a folder is removed with its files).
      this.db
        .prepare(
          `INSERT OR IGNORE INTO cand (path)
           SELECT d.path FROM entries e JOIN entries d ON d.path > e.path || '/' AND d.path < e.path || '0'
           LEFT JOIN rscan r ON r.path = e.path
           WHERE e.kind = 'dir' AND ${inRange} AND (r.path IS NULL OR r.kind IS NOT 'dir')`,
        )
        .run(params);
    }
    return this.candCount() - before;
  }

  // ---- the server folders pulled whole (cycle/new-remote-folders.ts, rules T3/T4) ----

  private pullReady = false;

  /** The temp table `rtree`: the server listing's rows of the folders pulled whole. */
  private pullScratch(): void {
    this.scratch();
    if (this.pullReady) return;
    this.db.exec(`CREATE TEMP TABLE IF NOT EXISTS rtree (
      path TEXT PRIMARY KEY NOT NULL, kind TEXT, size INTEGER, mtime_ns INTEGER, mode INTEGER, ino INTEGER, target TEXT
    ) WITHOUT ROWID;`);
    this.pullReady = true;
  }

  /** The folders in rscan after `after`, in path order; `limit` of them. */
  rscanDirs(after: string, limit: number): string[] {
    this.scratch();
    const rows = this.db
      .prepare("SELECT path FROM rscan WHERE kind = 'dir' AND path > ? ORDER BY path LIMIT ?")
      .all(after, limit) as { path: string }[];
    return rows.map((r) => r.path);
  }

  /** Moves the rscan rows of `root` and everything below it into rtree (they are no candidates then). */
  pullTreeTake(root: string): void {
    this.pullScratch();
    const [lo, hi] = descendantRange(root) ?? ['', '\u{10FFFF}'];
    const where = 'path = ? OR (path > ? AND path < ?)';
    this.db.transaction(() => {
      this.db.prepare(`INSERT OR REPLACE INTO rtree SELECT * FROM rscan WHERE ${where}`).run(root, lo, hi);
      this.db.prepare(`DELETE FROM rscan WHERE ${where}`).run(root, lo, hi);
    })();
  }

  /** The rtree rows of `root` and below it after `after` ('' for the first), in path order. */
  pullTreePage(root: string, after: string, limit: number): RemoteEntry[] {
    this.pullScratch();
    const [lo, hi] = descendantRange(root) ?? ['', '\u{10FFFF}'];
    const rows = this.db
      .prepare('SELECT * FROM rtree WHERE (path = ? OR (path > ? AND path < ?)) AND path > ? ORDER BY path LIMIT ?')
      .safeIntegers(true)
      .all(root, lo, hi, after, limit) as ScanRow[];
    return rows.map(fromScanRow);
  }

  /** The rtree files (not folders) of `root` and below it. */
  pullTreeFiles(root: string): number {
    this.pullScratch();
    const [lo, hi] = descendantRange(root) ?? ['', '\u{10FFFF}'];
    const row = this.db
      .prepare("SELECT count(*) AS n FROM rtree WHERE kind = 'file' AND (path = ? OR (path > ? AND path < ?))")
      .get(root, lo, hi) as { n: number };
    return Number(row.n);
  }

  /** The kind the server's listing gave `path` in rtree; undefined when it is not there. */
  pullTreeKind(path: string): string | undefined {
    this.pullScratch();
    const row = this.db.prepare('SELECT kind FROM rtree WHERE path = ?').get(path) as { kind: string } | undefined;
    return row?.kind;
  }

  /** The rtree folders strictly below `root`, in path order. */
  pullTreeDirs(root: string): string[] {
    this.pullScratch();
    const [lo, hi] = descendantRange(root) ?? ['', '\u{10FFFF}'];
    const rows = this.db
      .prepare("SELECT path FROM rtree WHERE kind = 'dir' AND path > ? AND path < ? ORDER BY path")
      .all(lo, hi) as { path: string }[];
    return rows.map((r) => r.path);
  }

  /** Drops the rtree rows of `root` and below it; with `toCand`, they become candidates first. */
  pullTreeDrop(root: string, toCand = false): void {
    this.pullScratch();
    const [lo, hi] = descendantRange(root) ?? ['', '\u{10FFFF}'];
    const where = 'path = ? OR (path > ? AND path < ?)';
    this.db.transaction(() => {
      if (toCand)
        this.db.prepare(`INSERT OR IGNORE INTO cand (path) SELECT path FROM rtree WHERE ${where}`).run(root, lo, hi);
      this.db.prepare(`DELETE FROM rtree WHERE ${where}`).run(root, lo, hi);
    })();
  }

  /** Notes files a push is about to send (W5): what they were when decided. */
  sendingAdd(rows: readonly { path: string; size: number; mtimeNs: bigint }[]): void {
    if (!rows.length) return;
    const st = (this.sendingInsert ??= this.db.prepare(
      'INSERT OR REPLACE INTO sending (path, size, mtime_ns) VALUES (?, ?, ?)',
    ));
    this.db.transaction(() => {
      for (const r of rows) st.run(r.path, r.size, r.mtimeNs);
    })();
  }

  /** A file a push was sending and did not record (interrupted), if any. */
  sendingGet(p: string): { size: number; mtimeNs: bigint } | undefined {
    const r = (this.sendingSelect ??= this.db
      .prepare('SELECT size, mtime_ns FROM sending WHERE path = ?')
      .safeIntegers(true)).get(p) as { size: bigint; mtime_ns: bigint } | undefined;
    return r ? { size: Number(r.size), mtimeNs: r.mtime_ns } : undefined;
  }

  /** Forgets sends that were recorded (or looked at again). */
  sendingDelete(paths: readonly string[]): void {
    if (!paths.length) return;
    const st = (this.sendingRemove ??= this.db.prepare('DELETE FROM sending WHERE path = ?'));
    this.db.transaction(() => {
      for (const p of paths) st.run(p);
    })();
  }

  private sendingInsert: Stmt | undefined;
  private sendingSelect: Stmt | undefined;
  private sendingRemove: Stmt | undefined;

  getMeta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  /** Runs `fn` in a transaction (a savepoint when nested); rolls back if it throws. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** A row of the scratch tables of a server listing (rscan, rtree), as SQLite gives it. */
interface ScanRow {
  path: string;
  kind: string;
  size: bigint | null;
  mtime_ns: bigint | null;
  mode: bigint | null;
  ino: bigint | null;
  target: string | null;
}

/** A scratch-table row as the listing's entry. */
function fromScanRow(r: ScanRow): RemoteEntry {
  return {
    path: r.path,
    kind: r.kind as EntryKind,
    size: toNumber(r.size),
    mtimeNs: r.mtime_ns ?? 0n,
    mode: toNumber(r.mode),
    ino: r.ino,
    target: r.target,
  };
}
