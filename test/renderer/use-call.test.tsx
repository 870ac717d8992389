// @vitest-environment jsdom
import { act, cleanup, renderHook } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { useCall } from '../../renderer/src/views/setup/useCall.js';
import { deferred } from './fake-bridge.js';

afterEach(cleanup);

describe('useCall (the wizard’s one busy/error/result hook)', () => {
  it('tracks busy, then the result or the ErrorInfo; reset forgets both', async () => {
    const d = deferred<number>();
    const { result } = renderHook(() => useCall((x: number) => d.promise.then((v) => v + x)));
    let p!: Promise<number | null>;
    act(() => {
      p = result.current.run(1);
    });
    expect(result.current).toMatchObject({ busy: true, error: null, result: null });
    await act(async () => {
      d.resolve(41);
      expect(await p).toBe(42);
    });
    expect(result.current).toMatchObject({ busy: false, error: null, result: 42 });
    act(() => result.current.reset());
    expect(result.current).toMatchObject({ busy: false, error: null, result: null });
  });

  it('keeps the engine’s ErrorInfo and drops an older answer that arrives late', async () => {
    const slow = deferred<string>();
    const fast = deferred<string>();
    const queue = [slow, fast];
    const { result } = renderHook(() => useCall(() => queue.shift()!.promise));
    let first!: Promise<string | null>;
    let second!: Promise<string | null>;
    act(() => {
      first = result.current.run();
      second = result.current.run();
    });
    await act(async () => {
      fast.resolve('new');
      await second;
      slow.resolve('old');
      expect(await first).toBeNull();
    });
    expect(result.current.result).toBe('new');

    const failing = renderHook(() =>
      useCall(async () => {
        throw { kind: 'auth-failed', message: 'Refused.', fix: 'Add the key.' };
      }),
    );
    await act(async () => {
      expect(await failing.result.current.run()).toBeNull();
    });
    expect(failing.result.current.error).toEqual({ kind: 'auth-failed', message: 'Refused.', fix: 'Add the key.' });
  });
});
