import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { ErrorInfo } from '../../shared/errors.js';
import type { EngineStatus } from '../../shared/status.js';
import { toErrorInfo, type Api } from './api.js';

export const ApiContext = createContext<Api | null>(null);

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside <ApiContext.Provider>');
  return api;
}

export interface EngineState {
  status: EngineStatus | null;
  error: ErrorInfo | null;
  loading: boolean;
  reload: () => void;
}

/** The engine status: loaded once with `status`, then kept live by `onState` pushes. */
export function useEngineStatus(api: Api): EngineState {
  const [status, setStatus] = useState<EngineStatus | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);

  const reload = useCallback(() => {
    const n = ++seq.current;
    setLoading(true);
    api.call('status', {}).then(
      (s) => {
        if (n !== seq.current) return;
        setStatus(s);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (n !== seq.current) return;
        setError(toErrorInfo(e));
        setLoading(false);
      },
    );
  }, [api]);

  useEffect(() => {
    reload();
    const off = api.bridge.onState((s) => {
      seq.current++; // a push is newer than any status call in flight
      setStatus(s);
      setError(null);
      setLoading(false);
    });
    return off;
  }, [api, reload]);

  return { status, error, loading, reload };
}

/** Runs an async action, tracking busy and error, for buttons. */
export function useAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setBusy(true);
      setError(null);
      try {
        return await fn(...args);
      } catch (e) {
        if (mounted.current) setError(toErrorInfo(e));
        return undefined;
      } finally {
        if (mounted.current) setBusy(false);
      }
    },
    [fn],
  );
  return { run, busy, error, clearError: () => setError(null) };
}
