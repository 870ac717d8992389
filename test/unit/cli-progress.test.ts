import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { ProgressPrinter, formatEta } from '../../electron/cli/progress.js';

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
    expect(text).toContain('docs [######------------------] 25% 1.5 KiB, 1/4 files  3.0 KiB/s');
    expect(text).toContain('docs [########################] 100% 6.0 KiB, 4/4 files');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('prints plain lines, at most one a second, when not a terminal', () => {
    const s = sink();
    const p = new ProgressPrinter(s.stream, false);
    p.update('docs', { filesDone: 1, filesTotal: 4, bytesDone: 10, rateBps: 0 });
    p.update('docs', { filesDone: 2, filesTotal: 4, bytesDone: 20, rateBps: 0 });
    p.done();
    expect(s.text()).toBe('docs: 10 B sent, 1/4 files\n');
    expect(s.text()).not.toContain('\r');
  });

  it('goes by bytes when the total is known, with the current file and the time left', () => {
    const s = sink();
    const p = new ProgressPrinter(s.stream, true);
    // One 15 MiB file at 1000 KiB/s, one second in: 1/15 done, not 100 %.
    p.update('docs', {
      filesDone: 0,
      filesTotal: 1,
      bytesDone: 1024 * 1024,
      bytesTotal: 15 * 1024 * 1024,
      rateBps: 1000 * 1024,
      etaSec: 15,
      currentFile: 'video.mp4',
    });
    p.done();
    expect(s.text()).toContain(
      '[##----------------------] 6% 1.0 MiB of 15 MiB, 0/1 files  1000 KiB/s  15 s left  video.mp4',
    );
  });

  it('says the time left in seconds, minutes and hours', () => {
    expect(formatEta(9)).toBe('9 s');
    expect(formatEta(75)).toBe('1 min 15 s');
    expect(formatEta(120)).toBe('2 min');
    expect(formatEta(3700)).toBe('1 h 1 min');
  });
});
