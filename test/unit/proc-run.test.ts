import { describe, expect, it } from 'vitest';
import { liveChildCount, run, spawnChild, stopAllChildren, stopProcess } from '../../electron/engine/proc/run.js';

describe('run', () => {
  it('collects output and exit code, never rejecting for a failure', async () => {
    const r = await run('/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toEqual({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  it('never uses a shell', async () => {
    const r = await run('printf', ['%s', '$(echo no) `echo no` ; echo no']);
    expect(r.stdout).toBe('$(echo no) `echo no` ; echo no');
  });

  it('rejects with ENOENT for a missing executable', async () => {
    await expect(run('lipsync-no-such-program', [])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('feeds string and Buffer input', async () => {
    expect((await run('cat', [], { input: 'abc' })).stdout).toBe('abc');
    expect((await run('cat', [], { input: Buffer.from([0x61, 0, 0x62]) })).stdout).toBe('a\0b');
  });

  it('streams an async iterable with backpressure', async () => {
    let produced = 0;
    async function* gen() {
      for (let i = 0; i < 200; i++) {
        produced++;
        yield Buffer.alloc(64 * 1024, 0x61);
      }
    }
    // The reader sleeps first: the producer must not run far ahead of the pipe.
    const p = run('/bin/sh', ['-c', 'sleep 0.5; wc -c'], { input: gen() });
    await new Promise((r) => setTimeout(r, 300));
    expect(produced).toBeLessThan(50);
    const r = await p;
    expect(r.stdout.trim()).toBe(String(200 * 64 * 1024));
  });

  it('survives a child that stops reading early', async () => {
    async function* gen() {
      for (let i = 0; i < 1000; i++) yield 'x'.repeat(65536);
    }
    const r = await run('head', ['-c', '10'], { input: gen() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('x'.repeat(10));
  });

  it('stops the child when the input producer throws', async () => {
    async function* gen() {
      yield 'a';
      throw new Error('producer failed');
    }
    const r = await run('cat', [], { input: gen(), timeoutMs: 10_000 });
    expect(r.signal).toBe('SIGTERM');
  });

  it('keeps only the last maxBuffer bytes', async () => {
    const r = await run('/bin/sh', ['-c', 'printf 0123456789'], { maxBuffer: 4 });
    expect(r.stdout).toBe('6789');
  });

  it('passes chunks to onStdout/onStderr', async () => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    await run('/bin/sh', ['-c', 'echo a; echo b >&2'], { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c) });
    expect(Buffer.concat(out).toString()).toBe('a\n');
    expect(Buffer.concat(err).toString()).toBe('b\n');
  });

  it('times out with SIGTERM', async () => {
    const t0 = Date.now();
    const r = await run('sleep', ['30'], { timeoutMs: 200 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGTERM');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const t0 = Date.now();
    const r = await run('/bin/sh', ['-c', "trap '' TERM; while :; do sleep 0.1; done"], { timeoutMs: 100 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 20_000);

  it('aborts', async () => {
    const ac = new AbortController();
    const p = run('sleep', ['30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const r = await p;
    expect(r.signal).toBe('SIGTERM');
    expect(r.timedOut).toBe(false);
  });

  it('does not start anything for an already aborted signal', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await run('/bin/sh', ['-c', 'echo ran'], { signal: ac.signal });
    expect(r.stdout).toBe('');
    expect(r.code).toBeNull();
  });
});

describe('stopProcess / stopAllChildren', () => {
  it('stops long-lived children', async () => {
    const before = liveChildCount();
    const a = spawnChild('sleep', ['30'], { stdio: 'ignore' });
    const b = spawnChild('sleep', ['30'], { stdio: 'ignore' });
    await Promise.all([new Promise((r) => a.once('spawn', r)), new Promise((r) => b.once('spawn', r))]);
    expect(liveChildCount()).toBe(before + 2);
    await stopProcess(a);
    expect(a.signalCode).toBe('SIGTERM');
    await stopAllChildren();
    expect(b.signalCode).toBe('SIGTERM');
    expect(liveChildCount()).toBe(before);
    await stopProcess(a); // idempotent
  });
});
