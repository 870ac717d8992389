import { describe, expect, it } from 'vitest';
import * as shared from '../../shared/format.js';
import * as rendererFormat from '../../renderer/src/format.js';

describe('the renderer formats sizes as the CLI does', () => {
  it('uses the shared formatter (binary units, KiB/MiB)', () => {
    expect(rendererFormat.formatBytes).toBe(shared.formatBytes);
    expect(rendererFormat.formatRate).toBe(shared.formatRate);
    expect(rendererFormat.formatBytes(500 * 1024)).toBe('500 KiB');
    expect(rendererFormat.formatRate(2 * 1024 * 1024)).toBe('2.0 MiB/s');
  });
});
