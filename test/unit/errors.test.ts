import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, type ErrorKind } from '../../shared/errors.js';
import {
  FAILURE_TABLE,
  LipsyncError,
  classifyFailure,
  rsyncErrorFiles,
  toErrorInfo,
  unescapeRsyncName,
  type FailingTool,
} from '../../electron/engine/errors.js';

const RSYNC_255 =
  'rsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: unexplained error (code 255) at io.c(232) [sender=3.2.7]\n';

const HOST_KEY_CHANGED = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:Uq8JC83bykzBjik9eRPezautgyMP1vLg0lIYkSGQc/E.
Please contact your system administrator.
Add correct host key in /home/me/.ssh/known_hosts to get rid of this message.
Offending ED25519 key in /home/me/.ssh/known_hosts:3
  remove with:
  ssh-keygen -f "/home/me/.ssh/known_hosts" -R "[nas.local]:2222"
Host key for [nas.local]:2222 has changed and you have requested strict checking.
Host key verification failed.
`;

interface Sample {
  name: string;
  tool: FailingTool;
  code: number | null;
  stderr: string;
  kind: ErrorKind;
  files?: string[];
  /** Substrings of message + fix. */
  mentions?: string[];
}

const SAMPLES: Sample[] = [
  // auth-failed
  {
    name: 'ssh publickey refused',
    tool: 'ssh',
    code: 255,
    stderr: 'me@nas.local: Permission denied (publickey).\r\n',
    kind: 'auth-failed',
    mentions: ['ssh-copy-id -i /keys/id_ed25519.pub -p 2222 me@nas.local', '/keys/id_ed25519'],
  },
  {
    name: 'rsync over ssh, publickey,password refused',
    tool: 'rsync',
    code: 255,
    stderr: 'me@nas.local: Permission denied (publickey,password).\r\n' + RSYNC_255,
    kind: 'auth-failed',
  },
  {
    name: 'too many auth failures',
    tool: 'ssh',
    code: 255,
    stderr:
      'Received disconnect from 10.0.0.2 port 22:2: Too many authentication failures\r\nDisconnected from 10.0.0.2 port 22\r\n',
    kind: 'auth-failed',
  },
  // host-unreachable
  {
    name: 'connection refused',
    tool: 'ssh',
    code: 255,
    stderr: 'ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n',
    kind: 'host-unreachable',
    mentions: ['Connection refused'],
  },
  {
    name: 'no route',
    tool: 'rsync',
    code: 255,
    stderr: 'ssh: connect to host 10.1.2.3 port 22: No route to host\r\n' + RSYNC_255,
    kind: 'host-unreachable',
  },
  {
    name: 'dns',
    tool: 'ssh',
    code: 255,
    stderr: 'ssh: Could not resolve hostname nas.invalid: Name or service not known\r\n',
    kind: 'host-unreachable',
    mentions: ['typos'],
  },
  {
    name: 'connect timeout',
    tool: 'ssh',
    code: 255,
    stderr: 'ssh: connect to host 10.255.255.1 port 22: Connection timed out\r\n',
    kind: 'host-unreachable',
  },
  {
    name: 'banner timeout',
    tool: 'ssh',
    code: 255,
    stderr: 'Connection timed out during banner exchange\r\nConnection to 10.255.255.1 port 22 timed out\r\n',
    kind: 'host-unreachable',
  },
  {
    name: 'network unreachable',
    tool: 'rsync',
    code: 255,
    stderr: 'ssh: connect to host 192.0.2.1 port 22: Network is unreachable\r\n' + RSYNC_255,
    kind: 'host-unreachable',
  },
  {
    name: 'kex closed',
    tool: 'ssh',
    code: 255,
    stderr:
      'kex_exchange_identification: Connection closed by remote host\r\nConnection closed by 127.0.0.1 port 2222\r\n',
    kind: 'host-unreachable',
  },
  // host keys
  {
    name: 'host key changed',
    tool: 'ssh',
    code: 255,
    stderr: HOST_KEY_CHANGED,
    kind: 'host-key-changed',
    mentions: [
      'SHA256:Uq8JC83bykzBjik9eRPezautgyMP1vLg0lIYkSGQc/E',
      'ssh-keygen -f "/home/me/.ssh/known_hosts" -R "[nas.local]:2222"',
      'Only if it matches',
    ],
  },
  {
    name: 'host key changed via rsync',
    tool: 'rsync',
    code: 255,
    stderr: HOST_KEY_CHANGED + RSYNC_255,
    kind: 'host-key-changed',
  },
  {
    name: 'host key unknown (BatchMode)',
    tool: 'ssh',
    code: 255,
    stderr: 'Host key verification failed.\r\n',
    kind: 'host-key-unknown',
    mentions: ['ssh -p 2222 -i "/keys/id_ed25519" me@nas.local'],
  },
  {
    name: 'host key unknown (strict)',
    tool: 'rsync',
    code: 255,
    stderr:
      'No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n' +
      RSYNC_255,
    kind: 'host-key-unknown',
  },
  // disk-full
  {
    name: 'receiver write failed, disk full',
    tool: 'rsync',
    code: 11,
    stderr:
      'rsync: [receiver] write failed on "/srv/data/big.iso": No space left on device (28)\nrsync error: error in file IO (code 11) at receiver.c(381) [receiver=3.2.7]\n',
    kind: 'disk-full',
    files: ['/srv/data/big.iso'],
  },
  {
    name: 'mkdir on full disk (ops)',
    tool: 'ssh',
    code: 1,
    stderr: "mkdir: cannot create directory '/srv/data/.lipsync': No space left on device\n",
    kind: 'disk-full',
  },
  {
    name: 'quota',
    tool: 'rsync',
    code: 23,
    stderr: 'rsync: [receiver] write failed on "/home/me/x": Disk quota exceeded (122)\n',
    kind: 'disk-full',
  },
  // rsync missing on the remote
  {
    name: 'bash: command not found',
    tool: 'rsync',
    code: 12,
    stderr:
      'bash: line 1: rsync: command not found\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: error in rsync protocol data stream (code 12) at io.c(232) [sender=3.2.7]\n',
    kind: 'rsync-missing-remote',
    mentions: ['sudo apt install rsync'],
  },
  {
    name: 'dash: not found',
    tool: 'rsync',
    code: 127,
    stderr: 'sh: 1: rsync: not found\nrsync error: remote command not found (code 127) at io.c(228) [sender=3.1.3]\n',
    kind: 'rsync-missing-remote',
  },
  {
    name: 'zsh: command not found',
    tool: 'rsync',
    code: 12,
    stderr: 'zsh:1: command not found: rsync\n' + RSYNC_255,
    kind: 'rsync-missing-remote',
  },
  { name: 'exit 127 alone', tool: 'rsync', code: 127, stderr: '', kind: 'rsync-missing-remote' },
  // partial transfer, vanished
  {
    name: 'unreadable and missing source files',
    tool: 'rsync',
    code: 23,
    stderr:
      'rsync: [sender] send_files failed to open "/home/me/p/secret.txt": Permission denied (13)\n' +
      'rsync: [sender] link_stat "/home/me/p/odd\\#012name" failed: No such file or directory (2)\n' +
      'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]\n',
    kind: 'partial-transfer',
    files: ['/home/me/p/secret.txt', '/home/me/p/odd\nname'],
  },
  {
    name: 'vanished',
    tool: 'rsync',
    code: 24,
    stderr:
      'file has vanished: "/home/me/p/tmp\\#011x"\nfile has vanished: "/home/me/p/b c"\nrsync warning: some files vanished before they could be transferred (code 24) at main.c(1330) [sender=3.2.7]\n',
    kind: 'vanished',
    files: ['/home/me/p/tmp\tx', '/home/me/p/b c'],
    mentions: ['2 files'],
  },
  // permission denied on the receiver
  {
    name: 'receiver mkstemp + generator mkdir denied',
    tool: 'rsync',
    code: 23,
    stderr:
      'rsync: [receiver] mkstemp "/srv/data/.lipsync/tmp/.a.txt.Xq3g1b" failed: Permission denied (13)\n' +
      'rsync: [generator] recv_generator: mkdir "/srv/data/newdir" failed: Permission denied (13)\n' +
      'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]\n',
    kind: 'permission-denied',
    files: ['/srv/data/.lipsync/tmp/.a.txt.Xq3g1b', '/srv/data/newdir'],
  },
  {
    name: 'receiver delete denied',
    tool: 'rsync',
    code: 23,
    stderr: 'rsync: [generator] delete_file: unlink("/srv/data/old.txt") failed: Permission denied (13)\n',
    kind: 'permission-denied',
    files: ['/srv/data/old.txt'],
  },
  {
    name: 'ops mkdir denied',
    tool: 'ssh',
    code: 1,
    stderr: "mkdir: cannot create directory '/srv/x': Permission denied\n",
    kind: 'permission-denied',
  },
  {
    name: 'read-only fs',
    tool: 'ssh',
    code: 1,
    stderr: "mkdir: cannot create directory '/mnt/ro/x': Read-only file system\n",
    kind: 'permission-denied',
  },
  {
    // rsync 3.2+ prints the name of a refused deletion unquoted.
    name: 'receiver delete denied, unquoted name',
    tool: 'rsync',
    code: 23,
    stderr: 'rsync: [generator] delete_file: unlink(old dir/a.txt) failed: Permission denied (13)\n',
    kind: 'permission-denied',
    files: ['old dir/a.txt'],
    mentions: ['one file', 'the user me', 'tries them again by itself'],
  },
  {
    // An immutable file (chattr +i) on the server: the receiver's rename and unlink get EPERM.
    name: 'receiver operation not permitted (immutable file)',
    tool: 'rsync',
    code: 23,
    stderr:
      'rsync: [generator] delete_file: unlink(gone.txt) failed: Operation not permitted (1)\n' +
      'rsync: [receiver] rename "/srv/data/.lipsync/imm.txt.qzlSea" -> "imm.txt": Operation not permitted (1)\n' +
      'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]\n',
    kind: 'permission-denied',
    files: ['gone.txt', 'imm.txt'],
    mentions: ['me@nas.local refused to change 2 files', 'chattr -i', 'lsattr', 'the other files were synced'],
  },
  {
    name: 'receiver: one denied, one protected',
    tool: 'rsync',
    code: 23,
    stderr:
      'rsync: [receiver] rename "/srv/data/.lipsync/new.txt.4c5cCM" -> "ro/new.txt": Permission denied (13)\n' +
      'rsync: [receiver] rename "/srv/data/.lipsync/imm.txt.qzlSea" -> "imm.txt": Operation not permitted (1)\n',
    kind: 'permission-denied',
    files: ['ro/new.txt', 'imm.txt'],
    mentions: ['No permission to write 2 files', 'chmod u+w', 'chattr -i'],
  },
  // remote root missing
  {
    name: 'receiver mkdir of root fails',
    tool: 'rsync',
    code: 11,
    stderr:
      'rsync: [Receiver] mkdir "/srv/none/deeper" failed: No such file or directory (2)\nrsync error: error in file IO (code 11) at main.c(791) [Receiver=3.2.7]\n',
    kind: 'remote-missing',
  },
  // cancelled
  {
    name: 'rsync SIGTERM',
    tool: 'rsync',
    code: 20,
    stderr: 'rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at rsync.c(713) [sender=3.2.7]\n',
    kind: 'cancelled',
  },
  { name: 'rsync killed', tool: 'rsync', code: null, stderr: '', kind: 'cancelled' },
  { name: 'ssh killed', tool: 'ssh', code: null, stderr: '', kind: 'cancelled' },
  // too old / unclean shell
  {
    name: 'old remote rsync',
    tool: 'rsync',
    code: 1,
    stderr:
      'rsync: on remote machine: --delete-missing-args: unknown option\nrsync error: syntax or usage error (code 1) at main.c(1554) [server=2.6.9]\n',
    kind: 'rsync-too-old',
  },
  {
    name: 'unclean shell',
    tool: 'rsync',
    code: 2,
    stderr: 'protocol version mismatch -- is your shell clean?\n(see the rsync man page for an explanation)\n',
    kind: 'unknown',
    mentions: ['non-interactive'],
  },
  // unknown
  {
    name: 'anything else',
    tool: 'rsync',
    code: 1,
    stderr:
      'rsync: --frobnicate: unknown option\nrsync error: syntax or usage error (code 1) at main.c(1795) [client=3.2.7]\n',
    kind: 'unknown',
    mentions: ['rsync: --frobnicate: unknown option', 'exit code 1'],
  },
  {
    name: 'ssh other',
    tool: 'ssh',
    code: 2,
    stderr: 'something odd happened\n',
    kind: 'unknown',
    mentions: ['something odd happened'],
  },
];

describe('classifyFailure', () => {
  const ctx = { host: 'nas.local', user: 'me', port: 2222, identityFile: '/keys/id_ed25519', path: '/srv/data' };

  it.each(SAMPLES.map((s) => [s.name, s] as const))('%s', (_name, s) => {
    const e = classifyFailure(s.tool, s.code, s.stderr, ctx);
    expect(e).toBeInstanceOf(LipsyncError);
    expect(e.kind).toBe(s.kind);
    expect(e.message.length).toBeGreaterThan(10);
    if (s.files) expect(e.files).toEqual(s.files);
    if (s.stderr) expect(e.detail).toBe(s.stderr);
    const text = `${e.message}\n${e.fix ?? ''}`;
    for (const m of s.mentions ?? []) expect(text).toContain(m);
  });

  it('covers every kind the brief asks for', () => {
    const kinds = new Set(SAMPLES.map((s) => s.kind));
    for (const k of [
      'auth-failed',
      'host-unreachable',
      'host-key-changed',
      'host-key-unknown',
      'disk-full',
      'rsync-missing-remote',
      'partial-transfer',
      'vanished',
      'permission-denied',
      'cancelled',
      'unknown',
    ] as const) {
      expect(kinds.has(k)).toBe(true);
    }
  });

  it('every rule yields a valid kind', () => {
    for (const r of FAILURE_TABLE) expect(ERROR_KINDS).toContain(r.kind);
  });

  it('host-unreachable names the port ssh tried, not 22, when the port comes from the ssh config', () => {
    const e = classifyFailure(
      'rsync',
      255,
      'ssh: connect to host 127.0.0.1 port 40123: Connection refused\r\n' + RSYNC_255,
      {
        host: 'lipsync-test',
      },
    );
    expect(e.kind).toBe('host-unreachable');
    expect(e.fix).toContain('port 40123');
    expect(e.fix).not.toContain('port 22');
    expect(e.fix).toContain('reconnects by itself');
    // Without a port in the message: the configured one, else 22.
    expect(
      classifyFailure('ssh', 255, 'ssh: Could not connect: Connection refused', { host: 'h', port: 2200 }).fix,
    ).toContain('port 2200');
    expect(classifyFailure('ssh', 255, 'ssh: Could not connect: Connection refused', { host: 'h' }).fix).toContain(
      'port 22,',
    );
  });

  it('auth-failed without an identity file talks about the default keys', () => {
    const e = classifyFailure('ssh', 255, 'me@h: Permission denied (publickey).', { host: 'h', user: 'me' });
    expect(e.fix).toContain('default ssh keys');
    expect(e.fix).toContain('ssh-copy-id -i ~/.ssh/id_ed25519.pub me@h');
  });

  it('host-key-changed without the remove hint builds the ssh-keygen -R command', () => {
    const e = classifyFailure(
      'ssh',
      255,
      '@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.',
      { host: 'h', port: 2200 },
    );
    expect(e.kind).toBe('host-key-changed');
    expect(e.fix).toContain('ssh-keygen -R "[h]:2200"');
  });
});

describe('rsyncErrorFiles', () => {
  it('keeps names of one side, and vanished ones apart', () => {
    const stderr = [
      'rsync: [sender] send_files failed to open "/a/x": Permission denied (13)',
      'rsync: [receiver] mkstemp "/b/.y.abc" failed: Permission denied (13)',
      'file has vanished: "/a/v"',
      'rsync: [receiver] rename "/b/.lipsync/tmp/.z.q1" -> "z": Permission denied (13)',
    ].join('\n');
    expect(rsyncErrorFiles(stderr, 'sender')).toEqual(['/a/x', '/a/v']);
    expect(rsyncErrorFiles(stderr, 'receiver')).toEqual(['/b/.y.abc', 'z']);
    expect(rsyncErrorFiles(stderr, undefined, true)).toEqual(['/a/v']);
  });
});

describe('unescapeRsyncName', () => {
  it.each([
    ['plain', 'plain'],
    ['a\\#012b', 'a\nb'],
    ['tab\\#011x', 'tab\tx'],
    ['cr\\#015', 'cr\r'],
    ['lit\\#134#012x', 'lit\\#012x'],
    ['back\\slash', 'back\\slash'],
    ['caf\\#303\\#251', 'café'],
    ['\\#01', '\\#01'],
    ['\\#089', '\\#089'],
    ['é\\#012', 'é\n'],
  ])('%j', (input, out) => {
    expect(unescapeRsyncName(input)).toBe(out);
  });
});

describe('LipsyncError and toErrorInfo', () => {
  it('serialises and rebuilds', () => {
    const e = new LipsyncError('vanished', 'gone', { fix: 'again', files: ['a'], detail: 'raw' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('LipsyncError');
    const info = e.toInfo();
    expect(info).toEqual({ kind: 'vanished', message: 'gone', fix: 'again', files: ['a'], detail: 'raw' });
    expect(toErrorInfo(e)).toEqual(info);
    const back = LipsyncError.fromInfo(info);
    expect(back.toInfo()).toEqual(info);
  });

  it('omits absent fields', () => {
    expect(new LipsyncError('cancelled', 'x').toInfo()).toEqual({ kind: 'cancelled', message: 'x' });
  });

  it('turns anything into an ErrorInfo', () => {
    expect(toErrorInfo(new Error('boom'))).toMatchObject({ kind: 'unknown', message: 'boom' });
    expect(toErrorInfo('text')).toEqual({ kind: 'unknown', message: 'text' });
    expect(toErrorInfo(42).kind).toBe('unknown');
    expect(toErrorInfo(null).kind).toBe('unknown');
    expect(toErrorInfo({ kind: 'disk-full', message: 'full', files: ['x', 3] })).toEqual({
      kind: 'disk-full',
      message: 'full',
      files: ['x'],
    });
    expect(toErrorInfo({ kind: 'nonsense', message: 'm' }).kind).toBe('unknown');
  });
});
