/**
 * Whether a pair's transfers compress (rsync -z; the flag and why: remote/rsync-args.ts).
 *
 * The setting is `on`, `off` or `auto`. `auto` reads the link: on when the round trip of
 * the pair's kept-open ssh session (remote/session.ts roundTripMs: the fastest answer of its
 * shell to a script sent, before the script runs: one round trip) is at least COMPRESS_AUTO_MIN_RTT_MS, off below it
 * (a LAN, loopback: compressing costs CPU and the link is not what is slow) and off before
 * anything was measured. A local-path remote never compresses, whatever the setting.
 *
 * It is asked once per transfer (a number read, nothing run), so a laptop that moves from
 * a LAN to a café switches at its next transfer. Each change of an `auto` decision is
 * written to the activity log once, with the round trip it was made from.
 */
import { COMPRESS_AUTO_MIN_RTT_MS, type CompressionMode } from '../../../shared/settings.js';
import type { ActivityLog } from '../log.js';
import { sessionFor } from '../remote/session.js';
import type { RemoteSpec, SshOptions } from '../types.js';

type SshRemote = Extract<RemoteSpec, { kind: 'ssh' }>;

/** The decision for one transfer and why, in words for the log. */
export interface CompressionChoice {
  compress: boolean;
  why: string;
}

/** Pure: the decision for `mode` over `remote` when the link's round trip is `roundTripMs` (undefined: not measured). */
export function chooseCompression(
  mode: CompressionMode,
  remote: Pick<RemoteSpec, 'kind'>,
  roundTripMs: number | undefined,
): CompressionChoice {
  if (remote.kind !== 'ssh') return { compress: false, why: 'a local-path remote has no link to save bytes on' };
  if (mode === 'on') return { compress: true, why: 'the setting is on' };
  if (mode === 'off') return { compress: false, why: 'the setting is off' };
  if (roundTripMs === undefined) return { compress: false, why: 'auto: the link is not measured yet' };
  const rtt = `${Math.round(roundTripMs)} ms`;
  return roundTripMs >= COMPRESS_AUTO_MIN_RTT_MS
    ? { compress: true, why: `auto: round trip ${rtt}, at least ${COMPRESS_AUTO_MIN_RTT_MS} ms` }
    : { compress: false, why: `auto: round trip ${rtt}, under ${COMPRESS_AUTO_MIN_RTT_MS} ms` };
}

/** One pair's decisions, transfer by transfer; logs each change of an `auto` decision once. */
export class PairCompression {
  private last: boolean | undefined;

  constructor(
    private readonly pair: string,
    private readonly log: ActivityLog,
    private readonly remote: () => RemoteSpec,
    private readonly ssh: () => SshOptions,
    private readonly mode: () => CompressionMode,
    /** The link's round trip now (tests give their own). */
    private readonly roundTripMs: (remote: SshRemote, ssh: SshOptions) => number | undefined = (remote, ssh) =>
      sessionFor(remote, ssh).roundTripMs(),
  ) {}

  /** Whether the transfer about to start compresses. */
  decide(): boolean {
    const remote = this.remote();
    const mode = this.mode();
    const rtt = remote.kind === 'ssh' ? this.roundTripMs(remote, this.ssh()) : undefined;
    const choice = chooseCompression(mode, remote, rtt);
    if (remote.kind === 'ssh' && mode === 'auto' && choice.compress !== this.last) {
      this.log.write({
        pair: this.pair,
        level: 'info',
        event: 'state',
        msg: `compression ${choice.compress ? 'on' : 'off'} (${choice.why})`,
      });
    }
    // A fixed setting forgets the last auto decision: back on auto, the first one is logged again.
    this.last = mode === 'auto' ? choice.compress : undefined;
    return choice.compress;
  }
}
