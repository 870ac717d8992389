/**
 * The native helper (out/native/malloc-trim.node, built by scripts/build-native.mjs before the
 * tests run) and the heap release that uses it: where it is looked for, that the build loads in
 * this Node from the CLI's own module, when a release runs the GC and the trim, and that a
 * scheduled release waits for a quiet moment.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cancelHeapRelease,
  heapReleasePending,
  releaseHeap,
  scheduleHeapRelease,
} from '../../electron/engine/memory.js';
import { mallocTrim, nativeCandidates } from '../../electron/engine/native.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const built = path.join(root, 'out/native/malloc-trim.node');

describe('nativeCandidates', () => {
  it('reaches out/native from the CLI build, the bundled main process and the sources', () => {
    const at = (m: string): string[] => nativeCandidates(pathToFileURL(m).href, {});
    expect(at('/app/out/electron/engine/native.js')[0]).toBe('/app/out/native/malloc-trim.node');
    expect(at('/app/out/main/index.js')).toContain('/app/out/native/malloc-trim.node');
    expect(at('/app/electron/engine/native.ts')).toContain('/app/out/native/malloc-trim.node');
  });
  it('looks beside the asar archive in a packaged app', () => {
    const c = nativeCandidates(pathToFileURL('/opt/lipsync/resources/app.asar/out/main/index.js').href, {});
    expect(c).toContain('/opt/lipsync/resources/app.asar.unpacked/out/native/malloc-trim.node');
  });
  it('takes LIPSYNC_NATIVE_DIR instead, and an empty one turns the helper off', () => {
    expect(nativeCandidates(import.meta.url, { LIPSYNC_NATIVE_DIR: '/x' })).toEqual(['/x/malloc-trim.node']);
    expect(nativeCandidates(import.meta.url, { LIPSYNC_NATIVE_DIR: '' })).toEqual([]);
  });
});

describe('malloc-trim.node', () => {
  it('is built and loads from the sources and from the CLI build, and trims', async () => {
    expect(existsSync(built)).toBe(true);
    const trim = mallocTrim();
    expect(trim).toBeTypeOf('function');
    expect(typeof trim!()).toBe('boolean');
    const fromOut = (await import(pathToFileURL(path.join(root, 'out/electron/engine/native.js')).href)) as {
      mallocTrim: () => (() => boolean) | null;
    };
    expect(fromOut.mallocTrim()).toBeTypeOf('function');
  });
  it('gives freed malloc memory in the middle of the heap back', () => {
    // Many small live blocks with big freed ones between them: free() cannot return the holes
    // (they are not at the heap's top); malloc_trim(0) can.
    const keep: Buffer[] = [];
    let holes: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      holes.push(Buffer.allocUnsafeSlow(60 * 1024));
      keep.push(Buffer.allocUnsafeSlow(64));
    }
    for (const h of holes) h.fill(1);
    holes = [];
    releaseHeap(0, null); // the GC that frees the holes' backing stores, without a trim
    expect(keep.length).toBe(2000);
    expect(mallocTrim()!()).toBe(true);
  });
});

describe('releaseHeap', () => {
  it('trims malloc after the GC when the heap had enough slack', () => {
    let calls = 0;
    const trim = (): boolean => (calls++, true);
    expect(releaseHeap(0, trim)).toBe(true);
    expect(calls).toBe(1);
  });
  it('still trims, without a GC, when the heap has little slack', () => {
    let calls = 0;
    expect(releaseHeap(Number.MAX_SAFE_INTEGER, () => (calls++, false))).toBe(false);
    expect(calls).toBe(1);
    expect(releaseHeap(Number.MAX_SAFE_INTEGER, () => (calls++, true))).toBe(true);
    expect(calls).toBe(2);
  });
  it('runs without the helper', () => {
    expect(releaseHeap(0, null)).toBe(true);
    expect(releaseHeap(Number.MAX_SAFE_INTEGER, null)).toBe(false);
  });
});

describe('scheduleHeapRelease', () => {
  it('waits for a quiet moment: a cancel (an event, a cycle starting) takes the pending release back', async () => {
    scheduleHeapRelease(20);
    expect(heapReleasePending()).toBe(true);
    cancelHeapRelease();
    expect(heapReleasePending()).toBe(false);
    scheduleHeapRelease(5);
    await new Promise((r) => setTimeout(r, 50));
    expect(heapReleasePending()).toBe(false); // it ran
  });
});
