/**
 * An in-memory LipsyncBridge for component tests: a plain object, no processes.
 * Each method answers from `handlers`; every call is recorded; tests push state and log records.
 */
import { act } from '@testing-library/react';
import { conflictId, type ConflictInfo } from '../../shared/api.js';
import type { PairSettings } from '../../shared/settings.js';
import type { EngineStatus, LogRecord, PairStatus } from '../../shared/status.js';
import type { LipsyncBridge } from '../../renderer/src/ipc.js';

type Handler = (params: Record<string, unknown>) => unknown;

export interface FakeBridge extends LipsyncBridge {
  calls: { method: string; params: Record<string, unknown> }[];
  handlers: Record<string, Handler>;
  callsOf(method: string): Record<string, unknown>[];
  pushState(s: EngineStatus): void;
  pushLog(r: LogRecord): void;
  opened: string[];
  shown: string[];
}

export function fakeBridge(
  handlers: Record<string, Handler> = {},
  opts: { openPath?: boolean; showInFolder?: boolean } = {},
): FakeBridge {
  const stateCbs = new Set<(s: EngineStatus) => void>();
  const logCbs = new Set<(r: LogRecord) => void>();
  const b: FakeBridge = {
    calls: [],
    handlers,
    opened: [],
    shown: [],
    callsOf(method) {
      return b.calls.filter((c) => c.method === method).map((c) => c.params);
    },
    async call(method, params) {
      const p = (params ?? {}) as Record<string, unknown>;
      b.calls.push({ method, params: p });
      const h = b.handlers[method];
      if (!h) throw { kind: 'not-implemented', message: `fake: no handler for ${method}` };
      return (await h(p)) as never;
    },
    onState(cb) {
      stateCbs.add(cb);
      return () => stateCbs.delete(cb);
    },
    onLog(cb) {
      logCbs.add(cb);
      return () => logCbs.delete(cb);
    },
    pushState(s) {
      act(() => {
        for (const cb of stateCbs) cb(s);
      });
    },
    pushLog(r) {
      act(() => {
        for (const cb of logCbs) cb(r);
      });
    },
  };
  if (opts.openPath) b.openPath = (p: string) => void b.opened.push(p);
  if (opts.showInFolder) b.showInFolder = (p: string) => void b.shown.push(p);
  return b;
}

export function pairStatus(over: Partial<PairStatus> = {}): PairStatus {
  return {
    id: 'docs',
    local: '/home/ann/Docs',
    remote: 'ann@nas:22:/srv/docs',
    direction: 'two-way',
    state: 'idle',
    pausedUntil: null,
    watcher: 'inotifywait',
    remoteWatcher: 'inotify',
    conflicts: 0,
    entries: 12,
    pending: 0,
    lastSyncAt: Date.now() - 5000,
    warnings: [],
    ...over,
  };
}

export function engineStatus(pairs: PairStatus[]): EngineStatus {
  return { pid: 1, version: '0.1.0', startedAt: Date.now() - 60_000, pairs };
}

export function pairSettings(over: Partial<PairSettings> = {}): PairSettings {
  return {
    id: 'docs',
    local: '/home/ann/Docs',
    remote: 'ann@nas:22:/srv/docs',
    direction: 'two-way',
    excludes: [],
    bwLimitKBps: 0,
    compression: 'auto',
    paused: false,
    pausedUntil: null,
    rescanIntervalSec: 3600,
    ...over,
  };
}

export function conflict(over: Partial<ConflictInfo> = {}): ConflictInfo {
  const pair = over.pair ?? 'docs';
  const seq = over.seq ?? 1;
  return {
    id: conflictId(pair, seq),
    pair,
    seq,
    path: 'notes.txt',
    copyPath: 'notes (conflict).txt',
    local: { size: 100, mtime: Date.UTC(2025, 0, 2, 10, 0), origin: 'laptop' },
    remote: { size: 250, mtime: Date.UTC(2025, 0, 2, 11, 0), origin: 'nas' },
    createdAt: Date.UTC(2025, 0, 2, 11, 5),
    ...over,
  };
}

/** A promise with its resolve/reject exposed, to hold a call "in flight". */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
