// A second sshd next to the harness's one, sharing its host key and client key,
// with extra session environment (sshd_config SetEnv):
//  - SHLVL=1: bash then counts as a nested shell and does not source ~/.bashrc for
//    ssh commands (Debian's bash sources it for every `ssh host cmd`; on the bench
//    machine root's ~/.bashrc runs `pyenv init`, ~300 ms per remote command).
//  - PATH without inotifywait: the engine's probe then finds none and polls.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, symlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadHarness } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pathWithout(dir, excluded) {
  const bin = join(dir, 'bin-no-inotify');
  mkdirSync(bin, { recursive: true });
  for (const sys of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (!existsSync(sys)) continue;
    for (const name of readdirSync(sys)) {
      if (excluded.includes(name) || existsSync(join(bin, name))) continue;
      try {
        symlinkSync(join(sys, name), join(bin, name));
      } catch {
        /* dup */
      }
    }
  }
  return bin;
}

/** opts: { name, noBashrc, noInotify } → { sshConfigFile, sshArgs, port, stop } */
export async function startVariant(server, freePort, opts) {
  const dir = join(server.dir, `variant-${opts.name}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const env = [];
  if (opts.noBashrc) env.push('SHLVL=1');
  if (opts.noInotify) env.push(`PATH=${pathWithout(dir, ['inotifywait', 'inotifywatch'])}`);
  let cfg = readFileSync(join(server.dir, 'sshd_config'), 'utf8')
    .replace(/^ListenAddress .*$/m, `ListenAddress 127.0.0.1:${port}`)
    .replace(/^PidFile .*$/m, `PidFile ${join(dir, 'sshd.pid')}`)
    .replace(/^SetEnv .*$/m, '');
  if (env.length) cfg += `SetEnv ${env.join(' ')}\n`;
  writeFileSync(join(dir, 'sshd_config'), cfg, { mode: 0o600 });
  const hostPub = readFileSync(join(server.dir, 'host_ed25519.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const kh = join(dir, 'known_hosts');
  writeFileSync(kh, `[127.0.0.1]:${port} ${hostPub}\n`, { mode: 0o600 });
  const sshCfg = readFileSync(server.sshConfigFile, 'utf8')
    .replace(/Port \d+/g, `Port ${port}`)
    .replace(/UserKnownHostsFile .*/g, `UserKnownHostsFile ${kh}`);
  const sshConfigFile = join(dir, 'ssh_config');
  writeFileSync(sshConfigFile, sshCfg, { mode: 0o600 });
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => {
    log += d;
    if (log.length > 1e5) log = log.slice(-5e4);
  });
  const sshArgs = ['-F', sshConfigFile, server.alias];
  for (let i = 0; ; i++) {
    try {
      execFileSync('ssh', ['-n', ...sshArgs, 'true'], { stdio: 'ignore', timeout: 5000 });
      break;
    } catch {
      if (i > 100) throw new Error(`variant sshd ${opts.name} did not start:\n${log}`);
      await sleep(100);
    }
  }
  return {
    port,
    sshConfigFile,
    sshArgs,
    pid: child.pid,
    async stop() {
      try {
        child.kill('SIGTERM');
      } catch {
        /* gone */
      }
    },
  };
}

/**
 * The harness's sshd and its `fast` variant (no ~/.bashrc for ssh commands): what the
 * one-row benches (restart, first-sync, idle-memory, profile) run against.
 */
export async function startBenchSshd() {
  const h = await loadHarness();
  const server = await h.startSshd();
  const fast = await startVariant(server, h.freePort, { name: 'fast', noBashrc: true });
  return { server, fast };
}
