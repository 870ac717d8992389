// The kept-open script session (remote/session.ts) over the harness sshd: scripts run
// one after another in one server shell, with runScript's contract unchanged (stdout,
// exit code, stderr, timeouts), and whatever a script prints cannot end it early.

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { useRemote } from '../support/remotes.js';
import { runScript } from '../../electron/engine/remote/script.js';
import { closeSessions, sessionFor } from '../../electron/engine/remote/session.js';
import { remoteOps } from '../../electron/engine/remote/ops.js';
import type { RemoteSpec } from '../../electron/engine/types.js';

describe('the kept-open script session', () => {
  const fx = useRemote('ssh', {
    tempPrefix: 'lipsync-session',
    closeSsh: (_server, o) => remoteOps({ kind: 'ssh', host: 'lipsync-test', path: '/' }, o).close(),
  });
  const spec = (): Extract<RemoteSpec, { kind: 'ssh' }> => ({ kind: 'ssh', host: 'lipsync-test', path: fx.base });
  /** The server shell running the scripts: a subshell's $$ is its parent's, the session's shell. */
  const shellPid = async (): Promise<string> => (await runScript(spec(), fx.ssh, 'echo "$$"')).stdout.trim();

  it('runs scripts one after another in one server shell, each in its own subshell', async () => {
    const first = await shellPid();
    expect(first).toMatch(/^\d+$/);
    // Variables, functions and `exit` end with the script; the next one runs in the same shell.
    const a = await runScript(spec(), fx.ssh, 'X=set; f() { echo f; }; f; echo "err here" >&2; exit 7');
    expect(a).toMatchObject({ code: 7, stdout: 'f\n', stderr: 'err here\n', timedOut: false });
    const b = await runScript(spec(), fx.ssh, 'echo "X=${X-unset}"; command -v f || echo "no f"');
    expect(b.code).toBe(0);
    expect(b.stdout).toBe('X=unset\nno f\n');
    expect(b.stderr).toBe('');
    expect(await shellPid()).toBe(first);
  });

  it('keeps output exact: a forged end marker, a read of stdin, no newline at the end, a large output', async () => {
    const pid = await shellPid();
    const forged = await runScript(
      spec(),
      fx.ssh,
      // What a file name printed by a script could hold; `cat` reads the script's stdin (/dev/null).
      `printf '\\nLIPSYNC-END-0123 0 0\\nafter\\n'; cat; printf 'no newline'`,
    );
    expect(forged.code).toBe(0);
    expect(forged.stdout).toBe('\nLIPSYNC-END-0123 0 0\nafter\nno newline');
    // 3 MiB through onStdout (the stat scripts' way), byte for byte; the kept stdout is the tail.
    const chunks: Buffer[] = [];
    const big = await runScript(
      spec(),
      fx.ssh,
      `i=0; while [ $i -lt 3 ]; do head -c 1048576 /dev/zero | tr '\\0' 'a'; i=$((i + 1)); done; printf end`,
      {
        onStdout: (c) => chunks.push(c),
      },
    );
    const all = Buffer.concat(chunks).toString();
    expect(big.code).toBe(0);
    expect(all.length).toBe(3 * 1048576 + 3);
    expect(all.endsWith('aaaend')).toBe(true);
    expect(all.replace(/a/g, '')).toBe('end');
    expect(big.stdout.length).toBeLessThanOrEqual(64 * 1024);
    expect(await shellPid()).toBe(pid);
  });

  it("reads the round trip from the shell's answer before the script runs, not from the script", async () => {
    const session = sessionFor(spec(), fx.ssh);
    closeSessions(spec(), fx.ssh);
    const fresh = sessionFor(spec(), fx.ssh);
    expect(fresh).not.toBe(session);
    // The only script of this session sleeps 300 ms; the loopback link answers in far less.
    expect((await runScript(spec(), fx.ssh, 'sleep 0.3; echo slept')).stdout).toBe('slept\n');
    const rtt = fresh.roundTripMs();
    expect(rtt).toBeDefined();
    expect(rtt!).toBeGreaterThanOrEqual(0);
    // The acknowledgement comes before the subshell, so the sleep is not in it.
    expect(rtt!).toBeLessThan(250);
  });

  it('a timeout ends the session; the next script starts a new one', async () => {
    const before = await shellPid();
    const r = await runScript(spec(), fx.ssh, 'sleep 5; echo late', { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.stdout).toBe('');
    const after = await shellPid();
    expect(after).toMatch(/^\d+$/);
    expect(after).not.toBe(before);
  });

  it('a script asked for while the session is busy runs over a new channel, at once', async () => {
    const session = await shellPid();
    const slow = runScript(spec(), fx.ssh, 'sleep 1; echo "$$"');
    const t0 = Date.now();
    const other = await shellPid();
    expect(Date.now() - t0).toBeLessThan(900);
    expect(other).not.toBe(session); // its own ssh channel, its own shell
    expect((await slow).stdout.trim()).toBe(session);
  });

  it('the server shell dying under a script is ssh failing (255); the next script works', async () => {
    await shellPid();
    const r = await runScript(spec(), fx.ssh, 'kill -9 $$; sleep 5');
    expect(r.code).toBe(255);
    expect((await runScript(spec(), fx.ssh, 'echo ok')).stdout).toBe('ok\n');
  });

  it('a script running when the session is closed ends then, as stopped, not at its timeout', async () => {
    const pid = await shellPid();
    let printed = '';
    let ran!: () => void;
    const running = new Promise<void>((r) => (ran = r));
    // The one-shot `lipsync sync` closes the sessions as it ends while the trash purge may still
    // run in one: the purge's 120 s timer then kept the finished command alive until it fired.
    // (The line of zeros gets the pid past what the session holds back of a possible end marker.)
    const script = runScript(spec(), fx.ssh, `echo "$$"; printf '%0100d\\n' 0; sleep 10; echo late`, {
      timeoutMs: 60_000,
      onStdout: (c) => {
        printed += c.toString();
        if (printed.includes('\n')) ran();
      },
    });
    await running;
    expect(printed.split('\n')[0]).toBe(pid); // it runs in the session
    const t0 = Date.now();
    closeSessions(spec(), fx.ssh);
    const r = await Promise.race([
      script,
      new Promise<'still waiting'>((res) => setTimeout(res, 3000, 'still waiting')),
    ]);
    expect(r, 'the script ends with its session').not.toBe('still waiting');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r).toMatchObject({ code: null, signal: 'SIGTERM', timedOut: false });
    expect((r as { stdout: string }).stdout.startsWith(`${pid}\n`)).toBe(true);
    expect(await shellPid()).not.toBe(pid);
  });

  it('ends with the pair’s ssh connection and its stderr file is removed', async () => {
    const pid = await shellPid();
    const file = (await runScript(spec(), fx.ssh, 'echo "$lipsync_e"')).stdout.trim();
    expect(file).toContain(`lipsync-session.${pid}`);
    closeSessions(spec(), fx.ssh);
    await new Promise((r) => setTimeout(r, 500));
    const { existsSync } = await import('node:fs');
    expect(existsSync(file)).toBe(false);
    expect(await shellPid()).not.toBe(pid);
    // A second server path with the same ssh options shares the session (the key is the ssh command).
    const tag = randomBytes(4).toString('hex');
    expect(sessionFor({ ...spec(), path: `/tmp/${tag}` }, fx.ssh)).toBe(sessionFor(spec(), fx.ssh));
  });
});
