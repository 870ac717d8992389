/** What the server can do: inotifywait on its PATH, and a find with GNU `-printf`. */

import type { RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import { run } from '../proc/run.js';
import { findInotifywait } from '../watch/watcher.js';
import { OUT, outLines, runScript, scriptFailure } from './script.js';

const PROBE_TIMEOUT_MS = 120_000;

const PROBE_SCRIPT = `
if command -v inotifywait >/dev/null 2>&1; then printf '${OUT}inotifywait:1\\n'; else printf '${OUT}inotifywait:0\\n'; fi
f=$(find / -maxdepth 0 -printf '%y:%T@:%P' 2>/dev/null)
printf '${OUT}find:%s\\n' "$f"`;

/** Whether a `find / -maxdepth 0 -printf '%y:%T@:%P'` output shows a find with GNU -printf. */
function isGnuFindProbe(s: string): boolean {
  return /^d:-?\d+\.\d+:$/.test(s.trim());
}

/** What the server can do: inotifywait on its PATH, and a find with GNU `-printf`. */
export async function probeCapabilities(remote: RemoteSpec, ssh: SshOptions): Promise<RemoteCapabilities> {
  if (remote.kind === 'local') {
    const inotifywait = process.platform === 'linux' && findInotifywait() !== null;
    let gnuFind = false;
    try {
      const r = await run('find', ['/', '-maxdepth', '0', '-printf', '%y:%T@:%P'], { timeoutMs: 10_000 });
      gnuFind = r.code === 0 && isGnuFindProbe(r.stdout);
    } catch {
      gnuFind = false;
    }
    return { inotifywait, gnuFind };
  }
  const r = await runScript(remote, ssh, PROBE_SCRIPT, { timeoutMs: PROBE_TIMEOUT_MS });
  if (r.code !== 0 || r.timedOut) throw scriptFailure(remote, ssh, r, remote.path);
  const lines = outLines(r.stdout);
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}:`))?.slice(key.length + 1);
  const i = value('inotifywait');
  const f = value('find');
  if (i === undefined || f === undefined) {
    throw new LipsyncError('unknown', `Unexpected answer from ${remote.host} while probing it.`, {
      detail: r.stdout.slice(-2000),
    });
  }
  return { inotifywait: i.trim() === '1', gnuFind: isGnuFindProbe(f) };
}
