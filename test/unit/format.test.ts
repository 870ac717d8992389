/**
 * One unit system for sizes and rates, shared by the CLI and the renderer: binary
 * units labelled KiB/MiB/GiB, the unit rsync's --bwlimit (a pair's bandwidth limit) counts in.
 */
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { BWLIMIT_UNIT, formatBwLimit, formatBytes, formatRate } from '../../shared/format.js';
import { ProgressPrinter } from '../../electron/cli/progress.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [500 * 1024, '500 KiB'],
    [1024 * 1024 - 100, '1.0 MiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [2_500_000, '2.4 MiB'],
    [3 * 1024 ** 3, '3.0 GiB'],
    [12.3 * 1024 ** 4, '12 TiB'],
  ])('formatBytes(%d) = %s', (n, want) => expect(formatBytes(n)).toBe(want));

  it('shows no number for what is not a size', () => {
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });

  it('rates and bandwidth limits are in the same unit', () => {
    expect(formatRate(500 * 1024)).toBe('500 KiB/s');
    expect(BWLIMIT_UNIT).toBe('KiB/s');
    expect(formatBwLimit(500)).toBe('500 KiB/s');
    expect(formatBwLimit(0)).toBe('no limit');
  });

  it('is the one the CLI progress uses: a transfer held to --bwlimit 500 shows 500 KiB/s', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const p = new ProgressPrinter(sink, false);
    p.update('docs', { filesDone: 1, filesTotal: 2, bytesDone: 5 * 1024 * 1024, rateBps: 500 * 1024 });
    expect(out).toBe('docs: 5.0 MiB sent, 1/2 files  500 KiB/s\n');
  });
});
