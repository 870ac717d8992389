import { describe, expect, it } from 'vitest';
import { splitServerAddress } from '../../shared/server-address.js';

describe('splitServerAddress', () => {
  it('splits user@host:port and its shorter forms', () => {
    expect(splitServerAddress('example.com')).toEqual({ host: 'example.com' });
    expect(splitServerAddress(' me@example.com ')).toEqual({ host: 'example.com', user: 'me' });
    expect(splitServerAddress('127.0.0.1:22960')).toEqual({ host: '127.0.0.1', port: 22960 });
    expect(splitServerAddress('me@nas:2222')).toEqual({ host: 'nas', user: 'me', port: 2222 });
    expect(splitServerAddress('a@b@host')).toEqual({ host: 'host', user: 'a@b' });
  });

  it('knows IPv6 with and without brackets', () => {
    expect(splitServerAddress('::1')).toEqual({ host: '::1' });
    expect(splitServerAddress('[::1]:2222')).toEqual({ host: '::1', port: 2222 });
    expect(splitServerAddress('me@[fe80::1]')).toEqual({ host: 'fe80::1', user: 'me' });
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', '  ', 'a b', '@host', 'me@', 'host:', 'host:x', 'host:0', 'host:70000', ':22'])
      expect(splitServerAddress(bad), bad).toBeNull();
  });
});
