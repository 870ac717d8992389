// The bench's network profiles (--net): loopback (the bench as it always ran: ssh straight to the
// sshd) or a relay (./relay.mjs) with a round trip and a rate in front of an sshd, reached as the
// ssh alias NET_ALIAS; and the measurement of what the relay actually gives (round trip, bulk rate).
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnRelay } from './relay.mjs';
import { median, sh, shOk } from './util.mjs';

/** Nominal figures per profile: round trip (ms) and rate each way (Mbit/s); loopback has no relay. */
export const PROFILES = {
  loopback: null,
  broadband: { rttMs: 30, mbit: 50 },
  far: { rttMs: 150, mbit: 10 },
};
/** The ssh alias of the relay, in the ssh config throughRelay writes. */
export const NET_ALIAS = 'lipsync-net';

/** The profile named by --net (null for loopback); throws on an unknown name. */
export function netProfile(name) {
  if (!(name in PROFILES)) throw new Error(`--net ${name}: expected one of ${Object.keys(PROFILES).join(', ')}`);
  return PROFILES[name];
}

export const nominal = (p) => `${p.rttMs} ms round trip, ${p.mbit} Mbit/s each way`;

/**
 * An ssh config with a `Host NET_ALIAS` block (HostName 127.0.0.1, Port `relayPort`, its own
 * known_hosts line for that port) made of the `Host lipsync-test` block of `sshConfigFile`,
 * followed by that file unchanged (its aliases still reach the sshd directly).
 */
function writeNetSshConfig(sshConfigFile, hostPubFile, relayPort) {
  const orig = readFileSync(sshConfigFile, 'utf8');
  const block = /^Host lipsync-test\n((?:[ \t]+\S.*\n)+)/m.exec(orig);
  if (!block) throw new Error(`${sshConfigFile} has no "Host lipsync-test" block`);
  const hostPub = readFileSync(hostPubFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const kh = `${sshConfigFile}.net-known_hosts`;
  writeFileSync(kh, `[127.0.0.1]:${relayPort} ${hostPub}\n`, { mode: 0o600 });
  const settings = block[1]
    .replace(/^(\s*)Port \d+$/m, `$1Port ${relayPort}`)
    .replace(/^(\s*)UserKnownHostsFile .*$/m, `$1UserKnownHostsFile ${kh}`);
  const file = `${sshConfigFile}.net`;
  writeFileSync(file, `Host ${NET_ALIAS}\n${settings}\n${orig}`, { mode: 0o600 });
  return file;
}

/**
 * Puts a relay with `profile`'s round trip and rate in front of `link` (an sshd variant, or the
 * harness's sshd: { port, sshConfigFile, ... }) whose host key is `server`'s. Returns `link` with
 * sshConfigFile and sshArgs that reach it through the relay (alias NET_ALIAS), the relay, and
 * stopRelay() (stop() also stops the sshd, as the variant's own stop does).
 */
export async function throughRelay(link, server, profile) {
  const relay = await spawnRelay({ to: link.port, rttMs: profile.rttMs, mbit: profile.mbit });
  const sshConfigFile = writeNetSshConfig(link.sshConfigFile, join(server.dir, 'host_ed25519.pub'), relay.port);
  return {
    ...link,
    sshConfigFile,
    sshArgs: ['-F', sshConfigFile, NET_ALIAS],
    relay,
    stopRelay: () => relay.stop(),
    async stop() {
      await relay.stop();
      await link.stop?.();
    },
  };
}

const cmOpts = (sock) => ['-o', 'ControlMaster=auto', '-o', `ControlPath=${sock}`, '-o', 'ControlPersist=60'];

/** Round trips (ms) of one line echoed by `cat` on the server over the open master, after warm-ups. */
function pingPong(args, n = 20, warm = 3) {
  return new Promise((resolve, reject) => {
    const p = spawn('ssh', [...args, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const xs = [];
    let t0 = 0,
      seen = '';
    const ping = () => {
      t0 = performance.now();
      p.stdin.write('p\n');
    };
    p.stdout.on('data', (d) => {
      seen += d;
      if (!seen.includes('\n')) return;
      seen = '';
      xs.push(performance.now() - t0);
      if (xs.length < n + warm) return ping();
      p.stdin.end();
      resolve(xs.slice(warm));
    });
    p.on('close', (code) => reject(new Error(`ssh cat exited (${code}) after ${xs.length} pings`)));
    ping();
  });
}

/** ms to read `bytes` from the server (`head -c bytes /dev/zero`) over the open master. */
function bulkDown(args, bytes) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('ssh', ['-n', ...args, `head -c ${bytes} /dev/zero`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let got = 0;
    p.stdout.on('data', (d) => (got += d.length));
    p.on('close', (code) =>
      code === 0 && got === bytes
        ? resolve(performance.now() - t0)
        : reject(new Error(`bulk read: ssh exited ${code} after ${got} of ${bytes} bytes`)),
    );
  });
}

/** ms to write `bytes` to the server (`cat >/dev/null`) over the open master. */
function bulkUp(args, bytes) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('ssh', [...args, 'cat >/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const piece = Buffer.alloc(1 << 20);
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, piece.length);
        left -= n;
        if (!p.stdin.write(piece.subarray(0, n))) return p.stdin.once('drain', pump);
      }
      p.stdin.end();
    };
    pump();
    p.on('close', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`bulk write: ssh exited ${code}`)),
    );
  });
}

/**
 * What the link gives, measured over one ControlMaster connection (as the engine runs its remote
 * commands): the round trip (median of line ping-pongs through `cat`), the time of `ssh true`,
 * and the bulk rate each way of ~3 s worth of the nominal rate (Mbit/s, the `ssh true` time
 * subtracted as the session's own cost).
 */
export async function measureLink(link, dir, profile) {
  const sock = join(dir, 'cm-net');
  const args = [...cmOpts(sock), '-o', 'Compression=no', ...link.sshArgs];
  await shOk('ssh', ['-n', ...args, 'true']);
  try {
    const rtts = await pingPong(args);
    const trues = [];
    for (let i = 0; i < 7; i++) trues.push((await shOk('ssh', ['-n', ...args, 'true'])).ms);
    const trueMs = median(trues);
    const bytes = Math.max(1, Math.round((profile.mbit * 3) / 8)) * 2 ** 20;
    const rate = (ms) => (bytes * 8) / ((ms - trueMs) * 1000);
    const downMs = await bulkDown(args, bytes);
    const upMs = await bulkUp(args, bytes);
    return {
      rttMs: median(rtts),
      rttMin: Math.min(...rtts),
      rttMax: Math.max(...rtts),
      pings: rtts.length,
      trueMs,
      bytes,
      downMs,
      upMs,
      downMbit: rate(downMs),
      upMbit: rate(upMs),
    };
  } finally {
    await sh('ssh', ['-O', 'exit', ...args]);
  }
}

const f1 = (x) => x.toFixed(1);

/** One line for the results header: the profile's nominal figures and what was measured. */
export function describeNet(name, profile, m) {
  return (
    `Network: \`--net ${name}\`, nominal ${nominal(profile)}, through bench/lib/relay.mjs (user-space; see bench/README.md). ` +
    `Measured: round trip ${f1(m.rttMs)} ms (median of ${m.pings} pings, ${f1(m.rttMin)}–${f1(m.rttMax)}); ` +
    `\`ssh true\` over a ControlMaster ${Math.round(m.trueMs)} ms (${f1(m.trueMs / m.rttMs)} round trips); ` +
    `bulk ${f1(m.downMbit)} Mbit/s down, ${f1(m.upMbit)} Mbit/s up (${m.bytes / 2 ** 20} MiB each way in ` +
    `${Math.round(m.downMs)} / ${Math.round(m.upMs)} ms, less the \`ssh true\` time).`
  );
}

/** ms as round trips of the measured link, e.g. "12.3 RTT"; '—' without a number. */
export const inRtts = (ms, m) => (Number.isFinite(ms) && m ? `${(ms / m.rttMs).toFixed(1)} RTT` : '—');
