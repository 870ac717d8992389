/**
 * rsync compression (issue 18 §1): the pair setting auto / on / off → `-z` or not, per
 * transfer; `auto` by the link's measured round trip (≥ 10 ms: on); never for a
 * local-path remote; each change of an auto decision logged once.
 */
import { describe, expect, it } from 'vitest';
import { rsyncPullArgs, rsyncPushArgs, rsyncTreePushArgs } from '../../electron/engine/remote/rsync-args.js';
import { chooseCompression, PairCompression } from '../../electron/engine/pair/compression.js';
import type { RemoteSpec } from '../../electron/engine/types.js';
import type { ActivityLog } from '../../electron/engine/log.js';
import type { LogRecord } from '../../shared/status.js';
import type { CompressionMode } from '../../shared/settings.js';

const ssh = { controlDir: '/tmp/lipsync-ctl-unused' };
const sshRemote: RemoteSpec = { kind: 'ssh', host: 'nas', path: '/srv/docs' };
const localRemote: RemoteSpec = { kind: 'local', path: '/mnt/nas/docs' };

const push = (remote: RemoteSpec, compress?: boolean) =>
  rsyncPushArgs({ localRoot: '/home/me/p', remote, ssh, trashDir: '.lipsync/trash/T', compress });
const pull = (remote: RemoteSpec, compress?: boolean) =>
  rsyncPullArgs({ localRoot: '/home/me/p', remote, ssh, trashDir: '.lipsync/trash/T', compress });
const tree = (remote: RemoteSpec, compress?: boolean) =>
  rsyncTreePushArgs({
    localRoot: '/home/me/p',
    remote,
    ssh,
    stagingDir: '.lipsync/incoming/p1',
    excludes: [],
    compress,
  });

/** `-z` and its spellings: none but plain -z is ever passed. */
const zFlags = (a: string[]) => a.filter((x) => /^(-z+|--compress.*|--zc.*|--skip-compress.*)$/.test(x));

describe('rsync arguments', () => {
  it('on: plain -z in a push, a pull and a folder push over ssh, before the endpoint', () => {
    for (const a of [push(sshRemote, true), pull(sshRemote, true), tree(sshRemote, true)]) {
      // Plain -z: both ends >= 3.2 negotiate zstd/lz4/zlibx/zlib, an older peer takes zlib.
      expect(zFlags(a)).toEqual(['-z']);
      expect(a.indexOf('-z')).toBeLessThan(a.indexOf('-e'));
    }
  });

  it('off (or not given): no -z', () => {
    for (const a of [push(sshRemote, false), pull(sshRemote), tree(sshRemote, false)]) expect(zFlags(a)).toEqual([]);
  });

  it('a local-path remote never compresses, even when asked', () => {
    for (const a of [push(localRemote, true), pull(localRemote, true), tree(localRemote, true)])
      expect(zFlags(a)).toEqual([]);
  });
});

describe('chooseCompression', () => {
  it.each<[CompressionMode, RemoteSpec, number | undefined, boolean]>([
    ['on', sshRemote, undefined, true],
    ['on', sshRemote, 0.5, true],
    ['off', sshRemote, 150, false],
    ['auto', sshRemote, 30, true],
    ['auto', sshRemote, 10, true],
    ['auto', sshRemote, 9.9, false],
    ['auto', sshRemote, 1, false],
    // Not measured yet (no script ran): off.
    ['auto', sshRemote, undefined, false],
    ['on', localRemote, 30, false],
    ['auto', localRemote, 30, false],
  ])('%s over %o with a round trip of %s ms → %s', (mode, remote, rtt, want) => {
    expect(chooseCompression(mode, remote, rtt).compress).toBe(want);
  });

  it('says why', () => {
    expect(chooseCompression('auto', sshRemote, 31.4).why).toBe('auto: round trip 31 ms, at least 10 ms');
    expect(chooseCompression('auto', sshRemote, 2).why).toBe('auto: round trip 2 ms, under 10 ms');
  });
});

describe('PairCompression', () => {
  function setup(remote: RemoteSpec = sshRemote) {
    const logged: Omit<LogRecord, 't'>[] = [];
    const log = { write: (r: Omit<LogRecord, 't'>) => logged.push(r) } as unknown as ActivityLog;
    const state = { mode: 'auto' as CompressionMode, rtt: undefined as number | undefined };
    const pc = new PairCompression(
      'docs',
      log,
      () => remote,
      () => ssh,
      () => state.mode,
      () => state.rtt,
    );
    return { pc, state, msgs: () => logged.map((r) => r.msg) };
  }

  it('decides per transfer (LAN → café → LAN) and logs each change of decision once', () => {
    const { pc, state, msgs } = setup();
    expect(pc.decide()).toBe(false);
    state.rtt = 2;
    expect(pc.decide()).toBe(false);
    state.rtt = 45;
    expect(pc.decide()).toBe(true);
    expect(pc.decide()).toBe(true);
    state.rtt = 3;
    expect(pc.decide()).toBe(false);
    expect(msgs()).toEqual([
      'compression off (auto: the link is not measured yet)',
      'compression on (auto: round trip 45 ms, at least 10 ms)',
      'compression off (auto: round trip 3 ms, under 10 ms)',
    ]);
  });

  it('a fixed setting is not logged; a local remote never compresses and is not logged', () => {
    const { pc, state, msgs } = setup();
    state.mode = 'on';
    state.rtt = 1;
    expect(pc.decide()).toBe(true);
    state.mode = 'off';
    expect(pc.decide()).toBe(false);
    expect(msgs()).toEqual([]);
    const local = setup(localRemote);
    local.state.mode = 'on';
    expect(local.pc.decide()).toBe(false);
    local.state.mode = 'auto';
    expect(local.pc.decide()).toBe(false);
    expect(local.msgs()).toEqual([]);
  });
});
