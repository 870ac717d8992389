/**
 * Reading a remote script's NUL stream as it arrives (runScript's onStdout):
 * what follows the stream marker (StreamGate, script.ts) goes to a parser, and
 * the first error the parser throws is kept, the rest of the output then
 * dropped, for the caller to report once the script has ended.
 */

import { StreamGate } from './script.js';

export class GatedOutput {
  private readonly gate = new StreamGate();
  /** The first error `onData` threw; null while there is none. */
  error: unknown = null;

  constructor(private readonly onData: (data: Buffer) => void) {}

  /** Whether the stream marker was seen (the script got as far as its answer). */
  get passed(): boolean {
    return this.gate.passed;
  }

  readonly onStdout = (chunk: Buffer): void => {
    if (this.error !== null) return;
    const data = this.gate.push(chunk);
    if (data === null) return;
    try {
      this.onData(data);
    } catch (e) {
      this.error = e;
    }
  };
}
