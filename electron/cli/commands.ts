/**
 * THE table of `lipsync` commands: for each, its arguments, its options, its help and
 * what it does. The parser (args.ts `parseCommandLine`), `lipsync --help` and every
 * `lipsync COMMAND --help` are made from it, so what a command accepts and what its
 * help says cannot drift. A command accepts only what its entry lists.
 *
 * Over ~400 lines on purpose: it is the one table of every command; one entry each.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { parseConflictId, type AddPairParams } from '../../shared/api.js';
import { BW_LIMIT_MAX_KBPS, COMPRESS_AUTO_MIN_RTT_MS, COMPRESSION_MODES, DIRECTIONS } from '../../shared/settings.js';
import { BWLIMIT_UNIT, formatBytes } from '../../shared/format.js';
import { DEFAULT_WEB_PORT } from '../../shared/ipc.js';
import { defaultDirs, type AppDirs } from '../engine/paths.js';
import { toErrorInfo } from '../engine/errors.js';
import { formatLogRecord } from '../engine/log.js';
import { ApiClient } from '../engine/api/client.js';
import {
  type AnyCommand,
  command,
  formatDuration,
  intValue,
  looksLikeDuration,
  oneOf,
  parseDuration,
  UsageError,
  type GlobalValues,
} from './args.js';
import { confirm, listLine, printError, printJson, printStatus, printSyncResult, request } from './output.js';
import { ProgressPrinter } from './progress.js';
import { runDaemon } from './daemon.js';
import { runDemo } from './demo.js';
import { SERVICE_ACTIONS, serviceCommand } from './service.js';

/** Settings and state directories: --config-dir/--data-dir, else $LIPSYNC_CONFIG_DIR/$LIPSYNC_DATA_DIR, else XDG. */
export function dirsOf(o: GlobalValues): AppDirs {
  const env = defaultDirs();
  return {
    configDir: o['config-dir'] ? resolve(o['config-dir']) : env.configDir,
    dataDir: o['data-dir'] ? resolve(o['data-dir']) : env.dataDir,
  };
}

// Parsers made outside the table: a generic call inside it would hide the option types from `run`.
const parseDirection = oneOf(DIRECTIONS);
const parseKeep = oneOf(['local', 'remote', 'both']);
const parseCompression = oneOf(COMPRESSION_MODES);
/** A conflict ID as `lipsync conflicts` shows it ("docs-3"), or a bare number as before. */
const parseConflictRef = (v: string, flag: string): string => {
  if (!parseConflictId(v)) throw new UsageError(`${flag} must be a conflict ID such as docs-3, not "${v}".`);
  return v;
};
const parseAction = oneOf(SERVICE_ACTIONS);

const json = { kind: 'flag', help: 'print JSON' } as const;
const web = {
  web: {
    kind: 'flag',
    help: 'also serve the lipsync UI on http://127.0.0.1:PORT (this computer only),\nprotected by a secret token in the printed address (see `lipsync web-url`)',
  },
  port: {
    kind: 'value',
    value: 'N',
    help: `port of the web UI (default ${DEFAULT_WEB_PORT})`,
    parse: intValue(1, 65535),
  },
} as const;
/** `--bwlimit`: a whole number of KiB/s up to BW_LIMIT_MAX_KBPS (what every rsync accepts). */
function bwLimitValue(v: string, flag: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a whole number, not "${v}".`);
  if (Number(v) > BW_LIMIT_MAX_KBPS)
    throw new UsageError(
      `${flag} must be at most ${BW_LIMIT_MAX_KBPS} KiB/s, not ${v}.`,
      `Give a limit from 1 to ${BW_LIMIT_MAX_KBPS} KiB/s (about 1 TB/s), or 0 for no limit.`,
    );
  return Number(v);
}

/**
 * A path the user typed → its pair and its path relative to that pair's folder: the pair
 * whose folder holds it (resolved against the working directory), else, with --pair,
 * relative to that pair's folder.
 */
async function pairPath(
  dirs: AppDirs,
  path: string,
  pair: string | undefined,
): Promise<{ pair: string; path: string }> {
  const { result: pairs } = await request(dirs, 'list', {});
  const abs = resolve(path);
  for (const p of pairs) {
    if (pair !== undefined && p.id !== pair) continue;
    const rel = relative(p.local, abs);
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) return { pair: p.id, path: rel.split(sep).join('/') };
  }
  if (pair !== undefined && !isAbsolute(path)) return { pair, path: path.replace(/^\.\/+/, '') };
  throw new UsageError(
    `${path} is not inside a pair's folder.`,
    pair === undefined
      ? 'Give a path inside a synced folder, or name the pair with --pair.'
      : `Give a path inside ${pair}'s folder.`,
  );
}

const portNeedsWeb = (verb: string) => (_a: unknown, o: { web?: boolean; port?: number }) => {
  if (o.port !== undefined && !o.web)
    throw new UsageError('--port only applies with --web.', `lipsync ${verb} --web --port ${o.port}`);
};

export const COMMANDS = {
  add: command({
    args: [{ name: 'LOCAL' }, { name: 'REMOTE' }],
    options: {
      id: { kind: 'value', value: 'ID', help: "name of the pair (default: from the folder's name)" },
      direction: {
        kind: 'value',
        value: 'DIRECTION',
        help: "two-way (default), send-only (never changes this computer's folder)\nor receive-only (never changes the server's folder)",
        parse: parseDirection,
      },
      exclude: { kind: 'list', value: 'PATTERN', help: 'exclude files (gitignore syntax); repeat for more' },
      bwlimit: {
        kind: 'value',
        value: 'KIBPS',
        help: `bandwidth limit in ${BWLIMIT_UNIT} (1 KiB = 1024 bytes; 0: no limit)`,
        parse: bwLimitValue,
      },
      compress: {
        kind: 'value',
        value: 'auto|on|off',
        help: `rsync compression: auto (default: on when the link's round trip\nis ${COMPRESS_AUTO_MIN_RTT_MS} ms or more, off on a LAN), on or off`,
        parse: parseCompression,
      },
      identity: { kind: 'value', value: 'FILE', help: 'ssh private key to use' },
      rescan: {
        kind: 'value',
        value: 'SECONDS',
        help: 'full rescan interval (default 3600)',
        parse: intValue(1, 7 * 24 * 3600),
      },
      'create-remote': { kind: 'flag', help: 'create the remote folder if it does not exist' },
      json: { kind: 'flag', help: 'print the new pair as JSON' },
    },
    summary: 'add a folder pair (REMOTE: [user@]host[:port]:/abs/path, or /abs/local/path)',
    help: `Add a folder pair. LOCAL is an existing directory; REMOTE is [user@]host[:port]:/abs/path
(ssh uses your ~/.ssh/config, agent and known_hosts) or an absolute local path (a mounted disk).
Everything is checked first; nothing is written if a check fails.`,
    async run(a, o) {
      const dirs = dirsOf(o);
      const params: AddPairParams = {
        // The local path is resolved here: the daemon's working directory is not ours.
        local: resolve(a.LOCAL),
        remote: a.REMOTE,
        id: o.id,
        direction: o.direction,
        excludes: o.exclude,
        bwLimitKBps: o.bwlimit,
        compression: o.compress,
        identityFile: o.identity,
        rescanIntervalSec: o.rescan,
        createRemote: o['create-remote'],
      };
      let res;
      try {
        res = await request(dirs, 'add', params);
      } catch (e) {
        const info = toErrorInfo(e);
        if (info.kind === 'remote-missing' && !params.createRemote && (await confirm(`${info.message} Create it?`))) {
          res = await request(dirs, 'add', { ...params, createRemote: true });
        } else throw e;
      }
      if (o.json) printJson(res.result);
      else {
        console.log(
          `Added pair "${res.result.id}": ${res.result.local} → ${res.result.remote} (${res.result.direction}).`,
        );
        if (!res.viaDaemon) console.log('Start syncing with `lipsync run` (or `lipsync sync` once).');
      }
      return 0;
    },
  }),

  remove: command({
    args: [{ name: 'PAIR' }],
    options: {},
    summary: 'forget a pair (never deletes files)',
    help: 'Forget a pair and its sync state. No file is deleted, here or on the server.',
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'remove', { pair: a.PAIR });
      console.log(`Removed pair "${result.removed}". No files were deleted.`);
      return 0;
    },
  }),

  list: command({
    args: [],
    options: { json },
    summary: 'list the pairs',
    help: `List the folder pairs: name, folders, direction, and whether it is paused, has a bandwidth limit (in ${BWLIMIT_UNIT}) or compression set on or off.`,
    async run(_a, o) {
      const { result } = await request(dirsOf(o), 'list', {});
      if (o.json) printJson(result);
      else if (!result.length) console.log('No folder pairs. Add one with `lipsync add LOCAL REMOTE`.');
      else for (const p of result) console.log(listLine(p));
      return 0;
    },
  }),

  run: command({
    args: [],
    options: web,
    summary:
      "run the sync daemon in the foreground (Ctrl-C stops it);\n--web also serves the lipsync UI to this computer's browser",
    help: `Run the sync daemon in the foreground for all pairs. Ctrl-C stops it cleanly, with its rsync, ssh and inotifywait children.
Only one daemon runs per user; while it runs, the other commands talk to it.
To start it at login instead, see \`lipsync service --help\`.`,
    check: portNeedsWeb('run'),
    async run(_a, o) {
      return runDaemon(dirsOf(o), undefined, o.web ? { web: { port: o.port ?? DEFAULT_WEB_PORT } } : {});
    },
  }),

  sync: command({
    args: [{ name: 'PAIR', optional: true }],
    options: { json },
    summary: 'sync now and wait; the exit code tells the result',
    help: 'Sync now (all pairs, or one) and wait. Exit code 0 when everything was synced, 1 otherwise.\nShows a progress bar on a terminal, plain lines otherwise.',
    async run(a, o) {
      const printer = new ProgressPrinter(process.stderr, Boolean(process.stderr.isTTY) && !o.json);
      const { result } = await request(dirsOf(o), 'sync', { pair: a.PAIR }, (pair, p) => printer.update(pair, p));
      printer.done();
      if (o.json) printJson(result);
      else if (!result.results.length) console.log('No folder pairs to sync. Add one with `lipsync add LOCAL REMOTE`.');
      else for (const r of result.results) printSyncResult(r);
      return result.results.every((r) => r.ok) ? 0 : 1;
    },
  }),

  status: command({
    args: [],
    options: { json },
    summary: 'show what each pair is doing',
    help: 'Show each pair: idle, syncing, paused, degraded or error, with counts, last sync and the reason for any problem.\nExit code 1 when a pair is in error.',
    async run(_a, o) {
      const { result, viaDaemon } = await request(dirsOf(o), 'status', {});
      if (o.json) printJson({ daemon: viaDaemon, ...result });
      else printStatus(result, viaDaemon);
      return result.pairs.some((p) => p.state === 'error') ? 1 : 0;
    },
  }),

  pause: command({
    args: [{ name: 'PAIR', optional: true }],
    options: {
      for: {
        kind: 'value',
        value: 'DURATION',
        help: 'resume by itself after DURATION: 30m, 1h, 8h, 90s, 2d, 1h30m (a unit is required; at most 24d)',
        parse: (v: string, flag: string) => parseDuration(v, flag),
      },
    },
    summary: 'pause syncing (all pairs, or one); --for 30m pauses for a while',
    help: 'Pause syncing of one pair or all. Without --for, until `lipsync resume`.',
    strayHint: (arg, argv) =>
      looksLikeDuration(arg)
        ? `To pause for a while, write the duration after --for: lipsync pause ${argv.filter((w) => w !== arg).join(' ')}${argv.length > 1 ? ' ' : ''}--for ${/^\d+$/.test(arg) ? `${arg}m` : arg}`
        : undefined,
    async run(a, o) {
      let result;
      try {
        ({ result } = await request(dirsOf(o), 'pause', { pair: a.PAIR, forMs: o.for }));
      } catch (e) {
        // `lipsync pause 10m`: meant all pairs, for 10 minutes.
        if (a.PAIR && looksLikeDuration(a.PAIR) && toErrorInfo(e).kind === 'pair-unknown')
          throw new UsageError(
            `lipsync pause: there is no pair "${a.PAIR}".`,
            `To pause all pairs for a while: lipsync pause --for ${/^\d+$/.test(a.PAIR) ? `${a.PAIR}m` : a.PAIR}`,
            'pause',
          );
        throw e;
      }
      const forText = o.for ? ` for ${formatDuration(o.for)}` : ' until `lipsync resume`';
      console.log(`Paused: ${result.paused.join(', ') || 'no pairs'}${result.paused.length ? forText : ''}.`);
      return 0;
    },
  }),

  resume: command({
    args: [{ name: 'PAIR', optional: true }],
    options: {},
    summary: 'resume syncing',
    help: 'Resume syncing of one pair or all.',
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'resume', { pair: a.PAIR });
      console.log(`Resumed: ${result.resumed.join(', ') || 'no pairs'}.`);
      return 0;
    },
  }),

  conflicts: command({
    args: [{ name: 'PAIR', optional: true }],
    options: { json },
    summary: 'list open conflicts (both versions were kept)',
    help: 'List open conflicts: files changed on both sides before they could sync. Both versions were kept:\nthe server\'s under the name, this computer\'s as "name (conflicted copy DEVICE DATE TIME).ext".',
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'conflicts', { pair: a.PAIR });
      if (o.json) printJson(result);
      else if (!result.length) console.log('No open conflicts.');
      else {
        for (const c of result) {
          console.log(`${c.id}\t[${c.pair}] ${c.path}`);
          console.log(
            `\tserver's version (kept the name): ${formatBytes(c.remote.size)}, modified ${new Date(c.remote.mtime).toLocaleString()} (${c.remote.origin})`,
          );
          console.log(
            `\tthis computer's version: ${c.copyPath}: ${formatBytes(c.local.size)}, modified ${new Date(c.local.mtime).toLocaleString()} (${c.local.origin})`,
          );
        }
        console.log('Settle one with `lipsync resolve ID --keep local|remote|both`.');
      }
      return 0;
    },
  }),

  resolve: command({
    args: [{ name: 'ID', parse: parseConflictRef }],
    options: {
      keep: {
        kind: 'value',
        value: 'local|remote|both',
        required: true,
        help: "local: this computer's version takes the name (the other goes to the trash)\nremote: the server's version stays; the conflict copy goes to the trash\nboth: keep both files as they are",
        parse: parseKeep,
      },
      pair: {
        kind: 'value',
        value: 'PAIR',
        help: 'the pair of the conflict, for an old-style ID that is only a number',
      },
    },
    summary: 'settle a conflict: --keep local|remote|both',
    help: 'Settle conflict ID (such as docs-3: see `lipsync conflicts`): say which version to keep.',
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'resolve', { id: a.ID, keep: o.keep, pair: o.pair });
      console.log(`Conflict ${result.resolved} resolved: kept ${result.kept}.`);
      return 0;
    },
  }),

  versions: command({
    args: [{ name: 'PATH', optional: true }],
    options: {
      pair: {
        kind: 'value',
        value: 'PAIR',
        help: 'the pair (else the one whose folder holds PATH); PATH is then relative to its folder',
      },
      search: { kind: 'value', value: 'TEXT', help: 'only versions whose path contains TEXT (any case)' },
      json,
    },
    summary: 'older and deleted versions of a file or folder, from both trashes',
    help: `List the versions lipsync kept of PATH (a file, or a folder: everything below it), newest first:
what an overwrite replaced or a delete removed, here and on the server (kept for trashDays, 30 by default).
Bring one back with \`lipsync restore PATH --version ID\`.`,
    async run(a, o) {
      const dirs = dirsOf(o);
      const where = a.PATH === undefined ? { pair: o.pair } : await pairPath(dirs, a.PATH, o.pair);
      const { result } = await request(dirs, 'versions', {
        pair: where.pair,
        path: 'path' in where ? where.path : undefined,
        query: o.search,
      });
      if (o.json) printJson(result);
      else if (!result.length) console.log('No versions kept' + (a.PATH ? ` of ${a.PATH}.` : '.'));
      else {
        for (const v of result)
          console.log(
            `${v.id}\n\t[${v.pair}] ${v.path}: ${formatBytes(v.size)}, modified ${new Date(v.mtime).toLocaleString()}, replaced ${new Date(v.trashedAt).toLocaleString()} (${v.side === 'local' ? 'this computer' : 'server'}: ${v.origin})`,
          );
        console.log('Restore one with `lipsync restore PATH --version ID`.');
      }
      return 0;
    },
  }),

  restore: command({
    args: [{ name: 'PATH' }],
    options: {
      version: {
        kind: 'value',
        value: 'ID',
        help: 'the version to bring back (see `lipsync versions PATH`; default: the newest)',
      },
      to: { kind: 'value', value: 'PATH', help: 'restore it there instead (e.g. next to the current file)' },
      pair: {
        kind: 'value',
        value: 'PAIR',
        help: 'the pair (else the one whose folder holds PATH); PATH is then relative to its folder',
      },
      json,
    },
    summary: 'bring back a version of a file from the trash',
    help: `Bring back a kept version of PATH (the newest, or --version ID): it is put at PATH (or --to PATH)
and synced; the version there now goes to the trash first, so a restore can be undone the same way.`,
    async run(a, o) {
      const dirs = dirsOf(o);
      const where = await pairPath(dirs, a.PATH, o.pair);
      let id = o.version;
      if (id === undefined) {
        const { result } = await request(dirs, 'versions', { pair: where.pair, path: where.path });
        const own = result.filter((v) => v.path === where.path && v.kind === 'file');
        if (!own.length) {
          printError({
            kind: 'invalid-settings',
            message: `No version of ${a.PATH} is kept.`,
            fix: 'See `lipsync versions` for what the trash holds.',
          });
          return 1;
        }
        id = own[0]!.id;
      }
      const to = o.to === undefined ? undefined : (await pairPath(dirs, o.to, where.pair)).path;
      const { result } = await request(dirs, 'restore', { pair: where.pair, id, to });
      if (o.json) printJson(result);
      else
        console.log(
          `Restored ${result.path} in ${result.pair}` +
            (result.replacedTo ? ` (the version it replaced is in ${result.replacedTo}).` : '.'),
        );
      return 0;
    },
  }),

  confirm: command({
    args: [{ name: 'PAIR' }],
    options: {},
    summary: 'go on with a sync that was paused because it would delete many files',
    help: "A sync that would delete more than half of a pair's files (or over 1,000) pauses and asks first.\nThis goes on with it (deleted files are kept in the trash).",
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'confirm', { pair: a.PAIR });
      console.log(`Confirmed: ${result.confirmed} goes on with its deletions.`);
      return 0;
    },
  }),

  log: command({
    args: [{ name: 'PAIR', optional: true }],
    options: {
      lines: {
        kind: 'value',
        value: 'N',
        help: 'how many records (default 50, at most 100000)',
        parse: intValue(1, 100_000),
      },
      json,
    },
    summary: 'show recent activity',
    help: 'Show recent activity (of all pairs, or one): files sent, deleted and moved, errors.',
    async run(a, o) {
      const { result } = await request(dirsOf(o), 'log', { lines: o.lines ?? 50, pair: a.PAIR });
      if (o.json) printJson(result);
      else for (const r of result) console.log(formatLogRecord(r));
      return 0;
    },
  }),

  'web-url': command({
    args: [],
    options: {},
    summary: 'print the address of the web UI of the running daemon (lipsync run --web)',
    help: 'Print the address of the web UI of the running daemon (started with `lipsync run --web`).\nThe address holds a secret token: whoever has it can control lipsync.',
    async run(_a, o) {
      const { readWebInfo } = await import('../engine/api/web.js');
      const info = await readWebInfo(dirsOf(o).dataDir);
      if (!info) {
        console.error('error: No lipsync daemon with a web UI is running.');
        console.error('  fix: Start one with `lipsync run --web`.');
        return 1;
      }
      console.log(info.url);
      return 0;
    },
  }),

  stop: command({
    args: [],
    options: {},
    summary: 'stop the running daemon',
    help: 'Stop the running daemon.',
    async run(_a, o) {
      const client = await ApiClient.connect(dirsOf(o).dataDir);
      if (!client) {
        console.log('No lipsync daemon is running.');
        return 0;
      }
      await client.call('shutdown', {});
      client.close();
      console.log('Stopping the lipsync daemon.');
      return 0;
    },
  }),

  service: command({
    args: [{ name: 'ACTION', label: SERVICE_ACTIONS.join('|'), parse: parseAction }],
    options: {
      'no-start': { kind: 'flag', help: 'install: write the unit only; print the commands that enable and start it' },
    },
    summary: 'start the daemon at login: install|uninstall|status (a systemd user service)',
    help: `Run \`lipsync run\` as a systemd user service (Linux), so syncing starts when you log in.
  install    write ~/.config/systemd/user/lipsync.service (under $XDG_CONFIG_HOME), then
             systemctl --user daemon-reload and enable --now it (without a user systemd, it
             prints what to run). The unit runs this node and this lipsync, with your
             --config-dir/--data-dir ($LIPSYNC_CONFIG_DIR/$LIPSYNC_DATA_DIR) when set.
  status     installed? enabled? active? (exit code 0 only when all three)
  uninstall  stop, disable and remove it
A user service runs only while you are logged in. On a machine without a graphical login
(a server), let it run from boot without a login: loginctl enable-linger $USER`,
    check(a, o) {
      if (o['no-start'] && a.ACTION !== 'install')
        throw new UsageError('--no-start only applies to install.', 'lipsync service install --no-start');
    },
    async run(a, o) {
      return serviceCommand(a.ACTION, {
        noStart: o['no-start'] ?? false,
        configDirFlag: o['config-dir'],
        dataDirFlag: o['data-dir'],
      });
    },
  }),

  demo: command({
    args: [{ name: 'DIR', optional: true }],
    options: web,
    summary: 'sync a demo folder to a second local folder, to see lipsync work',
    help: 'Create DIR/local and DIR/server (default ~/lipsync-demo), sync them both ways, and watch.\nEdit files in either and see them appear in the other. Ctrl-C stops it.',
    check: portNeedsWeb('demo'),
    async run(a, o) {
      return runDemo(a.DIR, o.web ? { web: { port: o.port ?? DEFAULT_WEB_PORT } } : {});
    },
  }),
} satisfies Record<string, AnyCommand>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
