import type { TransferProgress } from '../../shared/status.js';
import { formatBytes, formatEta, formatRate } from '../../shared/format.js';

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
    const total = p.bytesTotal;
    const bytes = total ? `${formatBytes(p.bytesDone)} of ${formatBytes(total)}` : formatBytes(p.bytesDone);
    const rate = p.rateBps ? `  ${formatRate(p.rateBps)}` : '';
    const eta = p.etaSec !== undefined && total ? `  ${formatEta(p.etaSec)} left` : '';
    const file = p.currentFile ? `  ${p.currentFile}` : '';
    if (this.tty) {
      const width = 24;
      // By bytes when the total is known (a big file is not "done" when it starts).
      const frac = total
        ? Math.min(1, p.bytesDone / total)
        : p.filesTotal
          ? Math.min(1, p.filesDone / p.filesTotal)
          : 0;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
      const pct = `${Math.floor(frac * 100)}%`;
      this.out.write(`\r${pair} [${bar}] ${pct} ${bytes}, ${files}${rate}${eta}${file}\x1b[K`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 1000) return;
    this.lastLine = now;
    this.out.write(`${pair}: ${bytes} sent, ${files}${rate}${eta}${file}\n`);
  }

  done(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

export { formatEta };
