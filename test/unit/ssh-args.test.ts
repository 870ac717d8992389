import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REMOTE_SH,
  controlSocketDir,
  rsyncQuote,
  rsyncShellArg,
  shQuote,
  sshArgs,
  sshOptionArgs,
  wrapScript,
} from '../../electron/engine/remote/ssh.js';
import { run } from '../../electron/engine/proc/run.js';
import type { SshOptions } from '../../electron/engine/types.js';

const NASTY = [
  '',
  ' ',
  'plain',
  "it's",
  "'",
  "''",
  '"',
  'a b  c',
  '$(touch /tmp/lipsync-pwned-shq)',
  '`id`',
  '$HOME',
  '\\',
  'a\\nb',
  'line\nbreak\n',
  '\n',
  'tab\there',
  '-rf',
  '--',
  '*',
  '~',
  '~/x',
  '!x',
  'a=b',
  '%s%n',
  ';|&<>(){}[]#',
  'é ü 漢字 🎉',
  "'; touch /tmp/lipsync-pwned-shq2; '",
  '\x01\x02\x7f',
];

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lipsync-sshargs-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('shQuote', () => {
  it.each(NASTY.map((s) => [JSON.stringify(s), s] as const))('round-trips %s through /bin/sh', async (_l, s) => {
    const r = await run('/bin/sh', ['-c', `printf %s ${shQuote(s)}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(s);
  });

  it('round-trips all of them as separate words of one command', async () => {
    const r = await run('/bin/sh', ['-c', `for a in ${NASTY.map(shQuote).join(' ')}; do printf '%s\\0' "$a"; done`]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(NASTY);
  });

  it('leaves safe words alone and quotes the rest', () => {
    expect(shQuote('/a/b-c_d.e')).toBe('/a/b-c_d.e');
    expect(shQuote('a=b')).toBe("'a=b'");
    expect(shQuote("it's")).toBe("'it'\\''s'");
  });
});

/** rsync's own splitting of the -e value (main.c do_cmd): spaces separate, quotes group, no backslashes. */
function rsyncSplit(cmd: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < cmd.length) {
    if (cmd[i] === ' ') {
      i++;
      continue;
    }
    let cur = '';
    let sq = false;
    let dq = false;
    while (i < cmd.length && (cmd[i] !== ' ' || sq || dq)) {
      const c = cmd[i] as string;
      if (c === "'" && !dq) sq = !sq;
      else if (c === '"' && !sq) dq = !dq;
      else cur += c;
      i++;
    }
    args.push(cur);
  }
  return args;
}

describe('rsyncQuote', () => {
  it.each(NASTY.filter((s) => !s.includes('\n')).map((s) => [JSON.stringify(s), s] as const))(
    'survives rsync splitting: %s',
    (_l, s) => {
      expect(rsyncSplit(`x ${rsyncQuote(s)} y`)).toEqual(['x', s, 'y']);
    },
  );
});

describe('sshArgs', () => {
  let base: SshOptions;
  beforeAll(() => {
    base = { controlDir: join(tmp, 'ctl-test') };
  });

  it('builds the option list, then -- and the host', () => {
    const a = sshArgs(
      { user: 'me', host: 'nas', port: 2222 },
      { ...base, configFile: '/etc/lipsync/ssh_config', identityFile: '/k/id', connectTimeoutSec: 7 },
      REMOTE_SH,
    );
    const text = a.join(' ');
    expect(text).toContain('-F /etc/lipsync/ssh_config');
    expect(text).toContain('-o BatchMode=yes');
    expect(text).toContain('-o ControlMaster=auto');
    expect(text).toContain(`-o ControlPath=${join(tmp, 'ctl-test')}/%C`);
    expect(text).toContain('-o ControlPersist=60');
    expect(text).toContain('-o ConnectTimeout=7');
    expect(text).toContain('-o ServerAliveInterval=15 -o ServerAliveCountMax=3');
    expect(text).toContain('-i /k/id -o IdentitiesOnly=yes');
    expect(text).toContain('-p 2222');
    expect(text).toContain('-l me');
    expect(a.slice(-4)).toEqual(['--', 'nas', '/bin/sh', '-s']);
    expect(text).not.toMatch(/StrictHostKeyChecking|UserKnownHostsFile|\/dev\/null/);
  });

  it('defaults ConnectTimeout to 10 and leaves out what is not set', () => {
    const a = sshArgs({ host: 'h' }, base);
    expect(a.join(' ')).toContain('ConnectTimeout=10');
    expect(a).not.toContain('-F');
    expect(a).not.toContain('-i');
    expect(a).not.toContain('-p');
    expect(a).not.toContain('-l');
    expect(a.slice(-2)).toEqual(['--', 'h']);
  });

  it('refuses a host that ssh would read as an option', () => {
    expect(() => sshArgs({ host: '-oProxyCommand=x' }, base)).toThrow();
  });

  it('falls back to a short private dir when controlDir is too long', () => {
    const long = join(tmp, 'x'.repeat(80));
    const dir = controlSocketDir(long);
    expect(dir).not.toBe(long);
    expect(Buffer.byteLength(dir) + 41 + 17).toBeLessThanOrEqual(103);
    const st = statSync(dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    const cp = sshOptionArgs({ host: 'h' }, { controlDir: long }).find((x) => x.startsWith('ControlPath='));
    expect(cp).toBe(`ControlPath=${dir}/%C`);
  });

  it('creates a missing controlDir with mode 0700', () => {
    const d = join(tmp, 'ctl');
    expect(controlSocketDir(d)).toBe(d);
    expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it('ssh itself reads the options as meant (ssh -G), spaces and % included', async () => {
    const ctl = join(tmp, 'c d%e');
    const keyDir = join(tmp, 'key dir%x');
    mkdirSync(keyDir);
    const key = join(keyDir, 'id key');
    writeFileSync(key, 'not really a key\n');
    chmodSync(key, 0o600);
    const cfg = join(tmp, 'cfg file');
    writeFileSync(cfg, 'Host *\n  GlobalKnownHostsFile /dev/null\n');
    const args = sshOptionArgs(
      { user: 'bob', host: 'example.com', port: 2200 },
      { controlDir: ctl, identityFile: key, configFile: cfg },
    );
    const r = await run('ssh', ['-G', ...args, '--', 'example.com']);
    expect(r.code).toBe(0);
    const conf = new Map<string, string[]>();
    for (const line of r.stdout.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp > 0) conf.set(line.slice(0, sp), [...(conf.get(line.slice(0, sp)) ?? []), line.slice(sp + 1)]);
    }
    expect(conf.get('controlpath')?.[0]).toMatch(
      new RegExp(`^${ctl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{40}$`),
    );
    expect(conf.get('identityfile')).toEqual([key.replace(/%/g, '%%')]); // ssh -G shows it before %-expansion
    expect(conf.get('identitiesonly')).toEqual(['yes']);
    expect(conf.get('port')).toEqual(['2200']);
    expect(conf.get('user')).toEqual(['bob']);
    expect(conf.get('batchmode')).toEqual(['yes']);
    expect(conf.get('controlmaster')).toEqual(['auto']);
    expect(conf.get('controlpersist')).toEqual(['60']);
    expect(conf.get('serveraliveinterval')).toEqual(['15']);
    expect(conf.get('stricthostkeychecking')).not.toEqual(['false']);
    expect(r.stderr).not.toMatch(/not accessible/);
  });
});

describe('rsyncShellArg', () => {
  it('is split by rsync back into exactly ssh + the option list', () => {
    const o: SshOptions = {
      controlDir: join(tmp, 'ctl space'),
      identityFile: join(tmp, "k'ey dir/i d"),
      configFile: join(tmp, 'c"fg x'),
    };
    const remote = { user: 'me', host: 'nas', port: 2222 };
    const e = rsyncShellArg(remote, o);
    expect(rsyncSplit(e)).toEqual(['ssh', ...sshOptionArgs(remote, o)]);
    expect(e).not.toContain(' -- ');
  });

  it('reaches ssh intact through a real rsync', async () => {
    // A stand-in "ssh" that records its arguments; rsync then fails, which is fine.
    const dump = join(tmp, 'dump args.sh');
    const out = join(tmp, 'args.out');
    writeFileSync(dump, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > ${shQuote(out)}\nexit 1\n`);
    chmodSync(dump, 0o755);
    const o: SshOptions = {
      controlDir: join(tmp, 'ctl space'),
      identityFile: join(tmp, "k'ey dir/i d"),
      configFile: join(tmp, 'c"fg x'),
    };
    const remote = { user: 'me', host: 'nas', port: 2222 };
    const e = rsyncShellArg(remote, o);
    const fake = rsyncQuote(dump) + e.slice('ssh'.length);
    const src = join(tmp, 'src.txt');
    writeFileSync(src, 'x');
    await run('rsync', ['-e', fake, src, 'nas:/dst/']);
    const got = readFileSync(out, 'utf8').split('\0').slice(0, -1);
    const opts = sshOptionArgs(remote, o);
    expect(got.slice(0, opts.length)).toEqual(opts);
    expect(got[opts.length]).toBe('nas');
    expect(got.slice(opts.length + 1).join(' ')).toMatch(/^rsync --server/);
  });
});

describe('wrapScript', () => {
  it('runs the script under sh with stdin closed for its commands', async () => {
    const r = await run('/bin/sh', ['-s'], { input: wrapScript('cat; echo "[$LC_ALL]"; echo done') });
    expect(r.stdout).toBe('[C]\ndone\n');
  });

  it('runs nothing of a truncated script', async () => {
    const full = wrapScript('echo first\necho second');
    const r = await run('/bin/sh', ['-s'], { input: full.slice(0, full.indexOf('second')) });
    expect(r.stdout).toBe('');
  });
});
