import { createInterface } from 'node:readline/promises';
import type { ApiMethod, ApiParams, ApiResults, SyncPairResult } from '../../shared/api.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { EngineStatus, PairStatus, TransferProgress } from '../../shared/status.js';
import { formatBwLimit, formatBytes } from '../../shared/format.js';
import { validateRequest } from '../../shared/ipc.js';
import type { AppDirs } from '../engine/paths.js';
import { Engine } from '../engine/engine.js';
import { ApiClient } from '../engine/api/client.js';
import { dispatch } from '../engine/api/dispatch.js';
import { LipsyncError } from '../engine/errors.js';

export function printError(e: ErrorInfo): void {
  console.error(`error: ${e.message}`);
  if (e.fix) console.error(`  fix: ${e.fix}`);
  if (e.files?.length) for (const f of e.files.slice(0, 20)) console.error(`  - ${JSON.stringify(f)}`);
}

export const printJson = (v: unknown): void => console.log(JSON.stringify(v, null, 2));

/** Runs a request on the daemon if one runs, else in-process. */
export async function request<M extends ApiMethod>(
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

/** A yes/no question on a terminal; no (without asking) when stdin is not one. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function describeState(p: PairStatus): string {
  return `${p.id}: ${p.state}  ${p.local} → ${p.remote} (${p.direction})`;
}

export function printStatus(s: EngineStatus, viaDaemon: boolean): void {
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

export function printSyncResult(r: SyncPairResult): void {
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

/** One line of `lipsync list`: id, folders, direction, then what differs from the defaults. */
export function listLine(p: {
  id: string;
  local: string;
  remote: string;
  direction: string;
  paused: boolean;
  bwLimitKBps: number;
  compression?: string;
}): string {
  const extra = [
    p.paused ? 'paused' : '',
    p.bwLimitKBps > 0 ? `limit ${formatBwLimit(p.bwLimitKBps)}` : '',
    p.compression && p.compression !== 'auto' ? `compression ${p.compression}` : '',
  ].filter(Boolean);
  return `${p.id}\t${p.local} → ${p.remote}\t${p.direction}${extra.map((x) => `\t${x}`).join('')}`;
}
