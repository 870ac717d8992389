// The one parser of a typed remote (shared/remote-address.ts), as the renderer uses it:
// the wizard's servers of existing pairs. The engine's cases (normalised paths, the
// messages of every refusal) are in remote-spec.test.ts.

import { describe, expect, it } from 'vitest';
import { parseRemoteAddress, type RemoteAddress } from '../../shared/remote-address.js';

describe('parseRemoteAddress', () => {
  it.each<[string, RemoteAddress]>([
    ['host:/srv/data', { kind: 'ssh', host: 'host', path: '/srv/data' }],
    ['me@host:2222:/srv/data', { kind: 'ssh', user: 'me', host: 'host', port: 2222, path: '/srv/data' }],
    ['user@[::1]:22:/p', { kind: 'ssh', user: 'user', host: '::1', port: 22, path: '/p' }],
    ['host:/a:b@c', { kind: 'ssh', host: 'host', path: '/a:b@c' }],
    ['/mnt/nas/x', { kind: 'local', path: '/mnt/nas/x' }],
  ])('%j', (input, remote) => {
    expect(parseRemoteAddress(input)).toEqual({ ok: true, remote });
  });

  // The path is as typed: normalising it is the engine's (remote/spec.ts, node:path).
  it('leaves the path as typed', () => {
    expect(parseRemoteAddress('h:/a//b/./c/')).toEqual({
      ok: true,
      remote: { kind: 'ssh', host: 'h', path: '/a//b/./c/' },
    });
    expect(parseRemoteAddress('/mnt/x/')).toEqual({ ok: true, remote: { kind: 'local', path: '/mnt/x/' } });
  });

  it('says what is wrong and how to fix it', () => {
    const r = parseRemoteAddress('me@host:backup');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem.message).toMatch(/not absolute/);
    expect(r.problem.fix).toMatch(/absolute path/);
  });

  // The renderer's own regex (renderer/src/format.ts parseRemoteSpec, now gone) accepted
  // these; the engine never did, so no pair has such a remote. Decided: the engine's rules.
  it.each([
    ['a@b@c:/p', /not a valid user/],
    ['host:0:/p', /out of range/],
    ['host:99999:/p', /out of range/],
    ['ho st:/p', /not a valid host/],
    ['[zz]:/p', /not a valid host/],
    ['me user@host:/p', /not a valid user/],
  ])('refuses %j, as the engine does', (input, re) => {
    const r = parseRemoteAddress(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem.message).toMatch(re);
  });

  // Decided too: white space around the remote is ignored (the renderer kept it in the user name).
  it('ignores white space around the remote', () => {
    expect(parseRemoteAddress('  me@host:/x  ')).toEqual({
      ok: true,
      remote: { kind: 'ssh', user: 'me', host: 'host', path: '/x' },
    });
  });
});
