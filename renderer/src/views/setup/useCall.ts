import { useCallback, useEffect, useRef, useState } from 'react';
import type { ErrorInfo } from '../../../../shared/errors.js';
import { toErrorInfo } from '../../api.js';

/** The shape every API call of the wizard has: running, its error, its result. */
export interface Call<A extends unknown[], R> {
  busy: boolean;
  error: ErrorInfo | null;
  result: R | null;
  /** Runs the call; resolves to its result, or null when it failed or a newer run replaced it. */
  run: (...args: A) => Promise<R | null>;
  /** Forgets the result and the error (a stale message goes once its cause changed), and any run in flight. */
  reset: () => void;
}

interface CallState<R> {
  busy: boolean;
  error: ErrorInfo | null;
  result: R | null;
}

const IDLE = { busy: false, error: null, result: null };

/**
 * ONE hook for the busy / error / result of an API call. Only the latest run counts: an
 * older answer arriving late is dropped, as is any answer after the component is gone.
 */
export function useCall<A extends unknown[], R>(fn: (...args: A) => Promise<R>): Call<A, R> {
  const [state, setState] = useState<CallState<R>>(IDLE);
  const fnRef = useRef(fn);
  const seq = useRef(0);
  useEffect(() => {
    fnRef.current = fn;
  }, [fn]);
  useEffect(() => {
    const s = seq;
    return () => {
      s.current++;
    };
  }, []);
  const run = useCallback(async (...args: A): Promise<R | null> => {
    const n = ++seq.current;
    setState({ busy: true, error: null, result: null });
    try {
      const r = await fnRef.current(...args);
      if (n !== seq.current) return null;
      setState({ busy: false, error: null, result: r });
      return r;
    } catch (e) {
      if (n === seq.current) setState({ busy: false, error: toErrorInfo(e), result: null });
      return null;
    }
  }, []);
  const reset = useCallback(() => {
    seq.current++;
    setState(IDLE);
  }, []);
  return { ...state, run, reset };
}
