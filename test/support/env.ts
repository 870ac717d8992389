import { afterAll, beforeAll } from 'vitest';

/** Sets (or, with undefined, unsets) an environment variable for the tests of the enclosing describe. */
export function withEnv(name: string, value: string | undefined): void {
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  });
}
