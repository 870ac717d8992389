import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import type { ApiMethod, ApiParams, ApiResults, AddPairParams, SyncPairResult } from '../../shared/api.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { EngineStatus, PairStatus, TransferProgress } from '../../shared/status.js';
import { defaultDirs, type AppDirs } from '../engine/paths.js';
import { Engine, VERSION } from '../engine/engine.js';
import { ApiClient } from '../engine/api/client.js';
import { dispatch } from '../engine/api/dispatch.js';
import { DEFAULT_WEB_PORT, validateRequest } from '../../shared/ipc.js';
import { LipsyncError, toErrorInfo } from '../engine/errors.js';
import { formatLogRecord } from '../engine/log.js';
import { runDaemon } from './daemon.js';
import { runDemo } from './demo.js';
import { ProgressPrinter } from './progress.js';
import { BWLIMIT_UNIT, formatBwLimit, formatBytes } from '../../shared/format.js';

const USAGE = `lipsync ${VERSION}: keep a local folder in sync with a folder on a server, over SSH.

Usage: lipsync <command> [options]

Commands:
  add LOCAL REMOTE     add a folder pair (REMOTE: [user@]host[:port]:/abs/path, or /abs/local/path)
  remove PAIR          forget a pair (never deletes files)
  list                 list the pairs
  run                  run the sync daemon in the foreground (Ctrl-C stops it);
                       --web also serves the lipsync UI to this computer's browser
  sync [PAIR]          sync now and wait; the exit code tells the result
  status               show what each pair is doing
  pause [PAIR]         pause syncing (all pairs, or one); --for 30m pauses for a while
  resume [PAIR]        resume syncing
  conflicts            list open conflicts (both versions were kept)
  resolve ID --keep local|remote|both
                       settle a conflict
  confirm PAIR         go on with a sync that was paused because it would delete many files
  log                  show recent activity
  web-url              print the address of the web UI of the running daemon (lipsync run --web)
  stop                 stop the running daemon
  demo                 sync a demo folder to a second local folder, to see lipsync work

Global options:
  --config-dir DIR     settings directory (default ~/.config/lipsync, or $LIPSYNC_CONFIG_DIR)
  --data-dir DIR       state directory (default ~/.local/share/lipsync, or $LIPSYNC_DATA_DIR)
  -h, --help           help for a command: lipsync <command> --help
  --version            print the version`;

const HELP: Record<string, string> = {
  add: `Usage: lipsync add LOCAL REMOTE [options]

Add a folder pair. LOCAL is an existing directory; REMOTE is [user@]host[:port]:/abs/path
(ssh uses your ~/.ssh/config, agent and known_hosts) or an absolute local path (a mounted disk).
Everything is checked first; nothing is written if a check fails.

Options:
  --id ID                 name of the pair (default: from the folder's name)
  --direction DIR         two-way (default), send-only (never changes this computer's folder)
                          or receive-only (never changes the server's folder)
  --exclude PATTERN       exclude files (gitignore syntax); repeat for more
  --bwlimit KIBPS         bandwidth limit in ${BWLIMIT_UNIT} (1 KiB = 1024 bytes; 0: no limit)
  --identity FILE         ssh private key to use
  --rescan SECONDS        full rescan interval (default 3600)
  --create-remote         create the remote folder if it does not exist
  --json                  print the new pair as JSON`,
  remove: 'Usage: lipsync remove PAIR\n\nForget a pair and its sync state. No file is deleted, here or on the server.',
  list: 'Usage: lipsync list [--json]\n\nList the folder pairs.',
  run: `Usage: lipsync run [--web [--port N]]

Run the sync daemon in the foreground for all pairs. Ctrl-C stops it cleanly, with its rsync, ssh and inotifywait children.
Only one daemon runs per user; while it runs, the other commands talk to it.

Options:
  --web                   also serve the lipsync UI on http://127.0.0.1:PORT (this computer only),
                          protected by a secret token in the printed address (see \`lipsync web-url\`)
  --port N                port of the web UI (default ${DEFAULT_WEB_PORT})`,
  'web-url':
    'Usage: lipsync web-url\n\nPrint the address of the web UI of the running daemon (started with `lipsync run --web`).\nThe address holds a secret token: whoever has it can control lipsync.',
  sync: 'Usage: lipsync sync [PAIR] [--json]\n\nSync now (all pairs, or one) and wait. Exit code 0 when everything was synced, 1 otherwise.\nShows a progress bar on a terminal, plain lines otherwise.',
  status:
    'Usage: lipsync status [--json]\n\nShow each pair: idle, syncing, paused, degraded or error, with counts, last sync and the reason for any problem.',
  pause:
    'Usage: lipsync pause [PAIR] [--for DURATION]\n\nPause syncing of one pair or all. DURATION: 30m, 1h, 8h, 90s, 2d. Without --for, until resumed.',
  resume: 'Usage: lipsync resume [PAIR]\n\nResume syncing of one pair or all.',
  log: 'Usage: lipsync log [--lines N] [--pair PAIR] [--json]\n\nShow recent activity: files sent, deleted and moved, errors.',
  stop: 'Usage: lipsync stop\n\nStop the running daemon.',
  conflicts:
    'Usage: lipsync conflicts [PAIR] [--json]\n\nList open conflicts: files changed on both sides before they could sync. Both versions were kept:\nthe server\'s under the name, this computer\'s as "name (conflicted copy DEVICE DATE TIME).ext".',
  resolve:
    "Usage: lipsync resolve ID --keep local|remote|both [--pair PAIR]\n\nSettle conflict ID (see `lipsync conflicts`):\n  local   this computer's version takes the name (the other goes to the trash)\n  remote  the server's version stays; the conflict copy goes to the trash\n  both    keep both files as they are",
  confirm:
    "Usage: lipsync confirm PAIR\n\nA sync that would delete more than half of a pair's files (or over 1,000) pauses and asks first.\nThis goes on with it (deleted files are kept in the trash).",
  demo: 'Usage: lipsync demo [DIR] [--web [--port N]]\n\nCreate DIR/local and DIR/server (default ~/lipsync-demo), sync them both ways, and watch.\nEdit files in either and see them appear in the other. With --web, also serve the web UI on 127.0.0.1 (the URL is printed). Ctrl-C stops it.',
};

export function parseDuration(s: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m)
    throw new LipsyncError('invalid-settings', `"${s}" is not a duration.`, {
      fix: 'Use for example 30m, 1h, 8h, 90s or 2d.',
    });
  const n = Number(m[1]);
  const unit = m[2] ?? 'm';
  return n * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
}

function printError(e: ErrorInfo): void {
  console.error(`error: ${e.message}`);
  if (e.fix) console.error(`  fix: ${e.fix}`);
  if (e.files?.length) for (const f of e.files.slice(0, 20)) console.error(`  - ${JSON.stringify(f)}`);
}

/** Runs a request on the daemon if one runs, else in-process. */
async function request<M extends ApiMethod>(
  dirs: AppDirs,
  method: M,
  params: ApiParams<M>,
  onProgress?: (pair: string, p: TransferProgress) => void,
): Promise<{ result: ApiResults[M]; viaDaemon: boolean }> {
  const client = await ApiClient.connect(dirs.dataDir);
  if (client) {
    try {
      const result = await client.call(method, params, (e) => onProgress?.(e.pair, e.progress));
      return { result, viaDaemon: true };
    } finally {
      client.close();
    }
  }
  const v = validateRequest(method, params);
  if (!v.ok) throw LipsyncError.fromInfo(v.error);
  const engine = new Engine({ dirs, watch: false });
  try {
    const result = await dispatch(engine, v, { onProgress: (e) => onProgress?.(e.pair, e.progress) });
    return { result: result as ApiResults[M], viaDaemon: false };
  } finally {
    await engine.stop();
  }
}

function describeState(p: PairStatus): string {
  const parts = [`${p.id}: ${p.state}`];
  parts.push(`${p.local} → ${p.remote} (${p.direction})`);
  return parts.join('  ');
}

function printStatus(s: EngineStatus, viaDaemon: boolean): void {
  console.log(viaDaemon ? `daemon: running (pid ${s.pid})` : 'daemon: not running (start it with `lipsync run`)');
  if (!s.pairs.length) console.log('No folder pairs yet. Add one with `lipsync add LOCAL REMOTE`.');
  for (const p of s.pairs) {
    console.log(describeState(p));
    const last = p.lastSyncAt ? new Date(p.lastSyncAt).toLocaleString() : 'never';
    if (p.conflicts) console.log(`  conflicts: ${p.conflicts} (see \`lipsync conflicts\`)`);
    console.log(
      `  files known: ${p.entries}  pending: ${p.pending < 0 ? 'full rescan' : p.pending}  last sync: ${last}  watcher: ${p.watcher}`,
    );
    if (p.progress)
      console.log(
        `  sending: ${p.progress.filesDone}/${p.progress.filesTotal} files, ${formatBytes(p.progress.bytesDone)}`,
      );
    if (p.reason) {
      console.log(`  why: ${p.reason.message}`);
      if (p.reason.fix) console.log(`  fix: ${p.reason.fix}`);
    }
    if (p.lastError && p.lastError !== p.reason) {
      console.log(`  last error: ${p.lastError.message}`);
      if (p.lastError.fix) console.log(`  fix: ${p.lastError.fix}`);
    }
    for (const w of p.warnings.slice(-5)) console.log(`  warning: ${w.message}`);
  }
}

function printSyncResult(r: SyncPairResult): void {
  if (r.ok) {
    console.log(
      `${r.pair}: synced — ${r.filesSent} file${r.filesSent === 1 ? '' : 's'} sent (${formatBytes(r.bytesSent)} of data), ${r.filesReceived} received, ${r.deleted} deleted, ${r.renamed} moved${r.conflicts ? `, ${r.conflicts} conflict${r.conflicts === 1 ? '' : 's'} (see \`lipsync conflicts\`)` : ''}`,
    );
  } else {
    console.log(`${r.pair}: failed`);
    if (r.error) printError(r.error);
  }
  for (const w of r.warnings) console.log(`${r.pair}: warning: ${w.message}`);
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    const topic = cmd === 'help' ? rest[0] : undefined;
    console.log(topic && HELP[topic] ? HELP[topic] : USAGE);
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    console.log(VERSION);
    return 0;
  }
  if (!HELP[cmd]) {
    console.error(`lipsync: unknown command "${cmd}". See \`lipsync --help\`.`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        json: { type: 'boolean' },
        'config-dir': { type: 'string' },
        'data-dir': { type: 'string' },
        id: { type: 'string' },
        direction: { type: 'string' },
        exclude: { type: 'string', multiple: true },
        bwlimit: { type: 'string' },
        identity: { type: 'string' },
        rescan: { type: 'string' },
        'create-remote': { type: 'boolean' },
        for: { type: 'string' },
        lines: { type: 'string' },
        pair: { type: 'string' },
        keep: { type: 'string' },
        web: { type: 'boolean' },
        port: { type: 'string' },
      },
    });
  } catch (e) {
    console.error(`lipsync ${cmd}: ${(e as Error).message}\n\n${HELP[cmd]}`);
    return 2;
  }
  const { values: o, positionals: pos } = parsed;
  if (o.help) {
    console.log(HELP[cmd]);
    return 0;
  }
  const env = defaultDirs();
  const dirs: AppDirs = { configDir: o['config-dir'] ?? env.configDir, dataDir: o['data-dir'] ?? env.dataDir };
  const json = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  const intOpt = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new LipsyncError('invalid-settings', `--${name} must be a whole number, not "${v}".`);
    return Number(v);
  };

  try {
    switch (cmd) {
      case 'run': {
        const port = intOpt('port', o.port);
        if (port !== undefined && (port < 1 || port > 65535))
          throw new LipsyncError('invalid-settings', `--port must be between 1 and 65535, not ${port}.`);
        if (port !== undefined && !o.web)
          throw new LipsyncError('invalid-settings', '--port only applies with --web.', {
            fix: `lipsync run --web --port ${port}`,
          });
        return await runDaemon(dirs, undefined, o.web ? { web: { port: port ?? DEFAULT_WEB_PORT } } : {});
      }
      case 'web-url': {
        const { readWebInfo } = await import('../engine/api/web.js');
        const info = await readWebInfo(dirs.dataDir);
        if (!info) {
          console.error('error: No lipsync daemon with a web UI is running.');
          console.error('  fix: Start one with `lipsync run --web`.');
          return 1;
        }
        console.log(info.url);
        return 0;
      }
      case 'demo':
        return await runDemo(pos[0], o.web ? { web: { port: intOpt('port', o.port) ?? DEFAULT_WEB_PORT } } : {});
      case 'add': {
        if (pos.length !== 2) {
          console.error(`lipsync add: expected LOCAL and REMOTE.\n\n${HELP.add}`);
          return 2;
        }
        const params: AddPairParams = {
          local: pos[0]!,
          remote: pos[1]!,
          id: o.id,
          direction: o.direction as AddPairParams['direction'],
          excludes: o.exclude,
          bwLimitKBps: intOpt('bwlimit', o.bwlimit),
          identityFile: o.identity,
          rescanIntervalSec: intOpt('rescan', o.rescan),
          createRemote: o['create-remote'],
        };
        if (params.direction && !['two-way', 'send-only', 'receive-only'].includes(params.direction)) {
          throw new LipsyncError(
            'invalid-settings',
            `--direction must be two-way, send-only or receive-only, not "${params.direction}".`,
          );
        }
        // The local path is resolved here: the daemon's working directory is not ours.
        params.local = (await import('node:path')).resolve(params.local);
        let res;
        try {
          res = await request(dirs, 'add', params);
        } catch (e) {
          const info = toErrorInfo(e);
          if (info.kind === 'remote-missing' && !params.createRemote && (await confirm(`${info.message} Create it?`))) {
            res = await request(dirs, 'add', { ...params, createRemote: true });
          } else throw e;
        }
        if (o.json) json(res.result);
        else {
          console.log(
            `Added pair "${res.result.id}": ${res.result.local} → ${res.result.remote} (${res.result.direction}).`,
          );
          if (!res.viaDaemon) console.log('Start syncing with `lipsync run` (or `lipsync sync` once).');
        }
        return 0;
      }
      case 'remove': {
        if (pos.length !== 1) {
          console.error(HELP.remove);
          return 2;
        }
        const { result } = await request(dirs, 'remove', { pair: pos[0]! });
        console.log(`Removed pair "${result.removed}". No files were deleted.`);
        return 0;
      }
      case 'list': {
        const { result } = await request(dirs, 'list', {});
        if (o.json) json(result);
        else if (!result.length) console.log('No folder pairs. Add one with `lipsync add LOCAL REMOTE`.');
        else
          for (const p of result)
            console.log(
              `${p.id}\t${p.local} → ${p.remote}\t${p.direction}${p.paused ? '\tpaused' : ''}${p.bwLimitKBps > 0 ? `\tlimit ${formatBwLimit(p.bwLimitKBps)}` : ''}`,
            );
        return 0;
      }
      case 'status': {
        const { result, viaDaemon } = await request(dirs, 'status', {});
        if (o.json) json({ daemon: viaDaemon, ...result });
        else printStatus(result, viaDaemon);
        return result.pairs.some((p) => p.state === 'error') ? 1 : 0;
      }
      case 'sync': {
        const printer = new ProgressPrinter(process.stderr, Boolean(process.stderr.isTTY) && !o.json);
        const { result } = await request(dirs, 'sync', { pair: pos[0] ?? o.pair }, (pair, p) =>
          printer.update(pair, p),
        );
        printer.done();
        if (o.json) json(result);
        else if (!result.results.length)
          console.log('No folder pairs to sync. Add one with `lipsync add LOCAL REMOTE`.');
        else for (const r of result.results) printSyncResult(r);
        return result.results.every((r) => r.ok) ? 0 : 1;
      }
      case 'pause': {
        const forMs = o.for ? parseDuration(o.for) : undefined;
        const { result } = await request(dirs, 'pause', { pair: pos[0] ?? o.pair, forMs });
        console.log(`Paused: ${result.paused.join(', ') || 'no pairs'}${forMs ? ` for ${o.for}` : ''}.`);
        return 0;
      }
      case 'resume': {
        const { result } = await request(dirs, 'resume', { pair: pos[0] ?? o.pair });
        console.log(`Resumed: ${result.resumed.join(', ') || 'no pairs'}.`);
        return 0;
      }
      case 'log': {
        const { result } = await request(dirs, 'log', {
          lines: intOpt('lines', o.lines) ?? 50,
          pair: o.pair ?? pos[0],
        });
        if (o.json) json(result);
        else for (const r of result) console.log(formatLogRecord(r));
        return 0;
      }
      case 'conflicts': {
        const { result } = await request(dirs, 'conflicts', { pair: pos[0] ?? o.pair });
        if (o.json) json(result);
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
      }
      case 'resolve': {
        const keep = o.keep;
        if (pos.length !== 1 || !/^\d+$/.test(pos[0]!) || (keep !== 'local' && keep !== 'remote' && keep !== 'both')) {
          console.error(HELP.resolve);
          return 2;
        }
        const { result } = await request(dirs, 'resolve', { id: Number(pos[0]), keep, pair: o.pair });
        console.log(`Conflict ${result.resolved} resolved: kept ${result.kept}.`);
        return 0;
      }
      case 'confirm': {
        if (pos.length !== 1) {
          console.error(HELP.confirm);
          return 2;
        }
        const { result } = await request(dirs, 'confirm', { pair: pos[0]! });
        console.log(`Confirmed: ${result.confirmed} goes on with its deletions.`);
        return 0;
      }
      case 'stop': {
        const client = await ApiClient.connect(dirs.dataDir);
        if (!client) {
          console.log('No lipsync daemon is running.');
          return 0;
        }
        await client.call('shutdown', {});
        client.close();
        console.log('Stopping the lipsync daemon.');
        return 0;
      }
    }
    return 2;
  } catch (e) {
    printError(toErrorInfo(e));
    return 1;
  }
}
