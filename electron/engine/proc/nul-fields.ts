/**
 * Splits a NUL-separated stream into fields. Incremental: chunks may be cut
 * anywhere, even inside a UTF-8 sequence (fields are decoded once complete).
 */
export class NulFieldSplitter {
  private partial: Buffer[] = [];

  push(chunk: Buffer): string[] {
    return this.pushRaw(chunk).map((f) => f.toString('utf8'));
  }

  /** Like push, with the fields' bytes as they came (a name need not be valid UTF-8). */
  pushRaw(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nul = chunk.indexOf(0, start);
      if (nul === -1) break;
      let field: Buffer = chunk.subarray(start, nul);
      if (this.partial.length > 0) {
        this.partial.push(field);
        field = Buffer.concat(this.partial);
        this.partial = [];
      }
      out.push(field);
      start = nul + 1;
    }
    // Copy the rest so the chunk isn't kept alive by a few bytes.
    if (start < chunk.length) this.partial.push(Buffer.from(chunk.subarray(start)));
    return out;
  }

  /** Bytes held for an incomplete field. */
  pendingBytes(): number {
    return this.partial.reduce((n, b) => n + b.length, 0);
  }
}
