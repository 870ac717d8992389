import { describe, expect, it } from 'vitest';
import { formatRemote, parseRemote } from '../../electron/engine/remote/spec.js';
import { LipsyncError } from '../../electron/engine/errors.js';
import type { RemoteSpec } from '../../electron/engine/types.js';

describe('parseRemote', () => {
  it.each<[string, RemoteSpec]>([
    ['host:/srv/data', { kind: 'ssh', host: 'host', path: '/srv/data' }],
    ['me@host:/srv/data', { kind: 'ssh', user: 'me', host: 'host', path: '/srv/data' }],
    ['me@host:2222:/srv/data', { kind: 'ssh', user: 'me', host: 'host', port: 2222, path: '/srv/data' }],
    ['host:22:/', { kind: 'ssh', host: 'host', port: 22, path: '/' }],
    ['nas.local:/volume1/my files/', { kind: 'ssh', host: 'nas.local', path: '/volume1/my files' }],
    ['192.168.1.10:/a//b/./c/../d', { kind: 'ssh', host: '192.168.1.10', path: '/a/b/d' }],
    ['[::1]:2222:/p', { kind: 'ssh', host: '::1', port: 2222, path: '/p' }],
    ['user@[::1]:/p', { kind: 'ssh', user: 'user', host: '::1', path: '/p' }],
    ['[fe80::1%eth0]:/p', { kind: 'ssh', host: 'fe80::1%eth0', path: '/p' }],
    ['host:/a:b@c', { kind: 'ssh', host: 'host', path: '/a:b@c' }],
    ['lipsync-test:/tmp/x', { kind: 'ssh', host: 'lipsync-test', path: '/tmp/x' }],
    ['/mnt/nas/x', { kind: 'local', path: '/mnt/nas/x' }],
    ['/mnt/nas/x/', { kind: 'local', path: '/mnt/nas/x' }],
    ['/mnt/a:b', { kind: 'local', path: '/mnt/a:b' }],
    ['/', { kind: 'local', path: '/' }],
    ['  me@host:/x  ', { kind: 'ssh', user: 'me', host: 'host', path: '/x' }],
  ])('%j', (input, spec) => {
    expect(parseRemote(input)).toEqual(spec);
  });

  it.each<[string, RegExp]>([
    ['host:rel/path', /not absolute/],
    ['host:~/x', /not absolute/],
    ['host:', /no path/],
    ['host:2222', /not absolute/],
    ['host:2222:rel', /not absolute/],
    [':/x', /host name is empty/],
    ['@host:/x', /user name .* empty/],
    ['me@:/x', /host name is empty/],
    ['-oProxyCommand=touch_x:/x', /starts with '-'/],
    ['me@-oProxyCommand=x:/p', /starts with '-'/],
    ['-me@host:/x', /starts with '-'/],
    ['host:0:/x', /out of range/],
    ['host:65536:/x', /out of range/],
    ['host:123456:/x', /not a valid port/],
    ['host:22a:/x', /not a valid port/],
    ['host::/x', /not a valid port/],
    ['ho st:/x', /not a valid host/],
    ['host;rm:/x', /not a valid host/],
    ['me user@host:/x', /not a valid user/],
    ['[::1:/x', /without '\]'/],
    ['[::1]/x', /needs ':'/],
    ['[zz]:/x', /not a valid host/],
    ['relative/path', /neither/],
    ['', /empty/],
    ['host:/a\0b', /NUL/],
  ])('rejects %j', (input, re) => {
    let err: unknown;
    try {
      parseRemote(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LipsyncError);
    const e = err as LipsyncError;
    expect(e.kind).toBe('invalid-remote');
    expect(e.message).toMatch(re);
    expect(e.fix).toBeTruthy();
  });

  it('tells the user to give an absolute path', () => {
    try {
      parseRemote('me@host:backup');
      expect.unreachable();
    } catch (e) {
      expect((e as LipsyncError).fix).toMatch(/absolute path/);
    }
  });
});

describe('formatRemote', () => {
  it.each<RemoteSpec>([
    { kind: 'ssh', host: 'host', path: '/srv/data' },
    { kind: 'ssh', user: 'me', host: 'host', port: 2222, path: '/srv/data' },
    { kind: 'ssh', host: 'host', port: 22, path: '/' },
    { kind: 'ssh', user: 'u', host: '::1', port: 2222, path: '/p q' },
    { kind: 'ssh', host: 'fe80::1%eth0', path: '/p' },
    { kind: 'ssh', host: 'h', path: '/a:1:/b' },
    { kind: 'local', path: '/mnt/nas/x' },
    { kind: 'local', path: '/' },
  ])('round-trips %j', (spec) => {
    expect(parseRemote(formatRemote(spec))).toEqual(spec);
  });

  it('formats the usual forms', () => {
    expect(formatRemote({ kind: 'ssh', user: 'me', host: 'h', port: 2222, path: '/x' })).toBe('me@h:2222:/x');
    expect(formatRemote({ kind: 'ssh', host: '::1', path: '/x' })).toBe('[::1]:/x');
    expect(formatRemote({ kind: 'local', path: '/mnt/x' })).toBe('/mnt/x');
  });
});
