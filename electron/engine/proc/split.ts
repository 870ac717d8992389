/**
 * Splitting a byte stream into records: the one splitter under every parser of
 * a child's output (NUL-separated fields of find, inotifywait and walkwatch;
 * lines of rsync's listings and progress). Incremental: chunks may be cut
 * anywhere, even inside a UTF-8 sequence (records are decoded once complete).
 */

/** Splits at any of the given delimiter bytes; records come out as their bytes, delimiters dropped. */
export class ByteSplitter {
  private partial: Buffer[] = [];
  private readonly single: number | null;

  constructor(private readonly delimiters: readonly number[]) {
    this.single = delimiters.length === 1 ? (delimiters[0] as number) : null;
  }

  private next(chunk: Buffer, from: number): number {
    if (this.single !== null) return chunk.indexOf(this.single, from);
    for (let i = from; i < chunk.length; i++) if (this.delimiters.includes(chunk[i] as number)) return i;
    return -1;
  }

  /** The records completed by this chunk, with their bytes as they came (a name need not be valid UTF-8). */
  pushRaw(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    for (;;) {
      const at = this.next(chunk, start);
      if (at === -1) break;
      let rec: Buffer = chunk.subarray(start, at);
      if (this.partial.length > 0) {
        this.partial.push(rec);
        rec = Buffer.concat(this.partial);
        this.partial = [];
      }
      out.push(rec);
      start = at + 1;
    }
    // Copy the rest so the chunk isn't kept alive by a few bytes.
    if (start < chunk.length) this.partial.push(Buffer.from(chunk.subarray(start)));
    return out;
  }

  /** The unterminated last record, if any (and forgets it). */
  endRaw(): Buffer[] {
    if (this.partial.length === 0) return [];
    const last = Buffer.concat(this.partial);
    this.partial = [];
    return [last];
  }

  /** Bytes held for an incomplete record. */
  pendingBytes(): number {
    return this.partial.reduce((n, b) => n + b.length, 0);
  }
}

/** Splits a NUL-separated stream into fields. */
export class NulFieldSplitter extends ByteSplitter {
  constructor() {
    super([0x00]);
  }

  push(chunk: Buffer): string[] {
    return this.pushRaw(chunk).map((f) => f.toString('utf8'));
  }
}

/** Splits a byte stream into '\n'-terminated lines (empty lines kept). */
export class LineSplitter extends ByteSplitter {
  constructor() {
    super([0x0a]);
  }

  push(chunk: Buffer): string[] {
    return this.pushRaw(chunk).map((l) => l.toString('utf8'));
  }

  /** The unterminated last line, if any. */
  end(): string[] {
    return this.endRaw().map((l) => l.toString('utf8'));
  }
}

/**
 * Hands each non-empty line to `onLine`, splitting at '\n' and '\r' (rsync's
 * progress lines end in '\r'). A runaway line without breaks is handed over
 * once it passes `maxLine` bytes rather than grow forever.
 */
export class LineReader {
  private readonly splitter = new ByteSplitter([0x0a, 0x0d]);
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = 1024 * 1024,
  ) {}

  push(chunk: Buffer): void {
    for (const l of this.splitter.pushRaw(chunk)) if (l.length > 0) this.onLine(l.toString('utf8'));
    if (this.splitter.pendingBytes() > this.maxLine) this.end();
  }

  end(): void {
    for (const l of this.splitter.endRaw()) if (l.length > 0) this.onLine(l.toString('utf8'));
  }
}
