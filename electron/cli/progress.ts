import type { TransferProgress } from '../../shared/status.js';
import { formatBytes, formatRate } from '../../shared/format.js';

/** A progress bar on a terminal; plain lines (at most one a second) otherwise. */
export class ProgressPrinter {
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
  ) {}

  update(pair: string, p: TransferProgress): void {
    const files = `${p.filesDone}/${p.filesTotal} files`;
    const rate = p.rateBps ? `  ${formatRate(p.rateBps)}` : '';
    if (this.tty) {
      const width = 24;
      const frac = p.filesTotal ? Math.min(1, p.filesDone / p.filesTotal) : 0;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
      this.out.write(`\r${pair} [${bar}] ${files}  ${formatBytes(p.bytesDone)}${rate}\x1b[K`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 1000) return;
    this.lastLine = now;
    this.out.write(`${pair}: ${files}, ${formatBytes(p.bytesDone)} sent${rate}\n`);
  }

  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
