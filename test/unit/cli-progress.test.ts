import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { ProgressPrinter } from '../../electron/cli/progress.js';

function sink(): { stream: Writable; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => out };
}

describe('sync progress output', () => {
  it('draws one bar line, redrawn in place, on a terminal', () => {
    const s = sink();
    const p = new ProgressPrinter(s.stream, true);
    p.update('docs', { filesDone: 1, filesTotal: 4, bytesDone: 1536, rateBps: 3072 });
    p.update('docs', { filesDone: 4, filesTotal: 4, bytesDone: 6144, rateBps: 3072 });
    p.done();
    const text = s.text();
    expect(text.split('\r').filter(Boolean)).toHaveLength(2);
    expect(text).toContain('docs [######------------------] 1/4 files  1.5 KiB  3.0 KiB/s');
    expect(text).toContain('docs [########################] 4/4 files  6.0 KiB');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('prints plain lines, at most one a second, when not a terminal', () => {
    const s = sink();
    const p = new ProgressPrinter(s.stream, false);
    p.update('docs', { filesDone: 1, filesTotal: 4, bytesDone: 10, rateBps: 0 });
    p.update('docs', { filesDone: 2, filesTotal: 4, bytesDone: 20, rateBps: 0 });
    p.done();
    expect(s.text()).toBe('docs: 1/4 files, 10 B sent\n');
    expect(s.text()).not.toContain('\r');
  });
});
