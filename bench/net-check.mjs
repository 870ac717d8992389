#!/usr/bin/env node
// Checks the relay alone: starts the bench sshd (the variant that skips ~/.bashrc), puts the relay
// of each named profile in front of it and prints what it measures through ssh (round trip,
// `ssh true` over a ControlMaster, bulk rate each way) next to the nominal figures; and the same
// straight to the sshd, for comparison.
// Usage: node bench/net-check.mjs [--net broadband,far]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBenchSshd } from './lib/sshvariant.mjs';
import { describeNet, measureLink, netProfile, throughRelay } from './lib/net.mjs';

const { values } = parseArgs({ options: { net: { type: 'string', default: 'broadband,far' } } });
const names = values.net.split(',');
names.forEach(netProfile); // unknown names fail before anything starts
const work = mkdtempSync(join(tmpdir(), 'lipsync-net-'));
const { server, fast } = await startBenchSshd();
try {
  const direct = await measureLink(fast, work, { mbit: 100 });
  console.log(
    `loopback (no relay): round trip ${direct.rttMs.toFixed(2)} ms, ssh true ${Math.round(direct.trueMs)} ms, ` +
      `bulk ${Math.round(direct.downMbit)} Mbit/s down, ${Math.round(direct.upMbit)} Mbit/s up`,
  );
  for (const name of names) {
    const p = netProfile(name);
    if (!p) continue;
    const link = await throughRelay(fast, server, p);
    try {
      console.log(describeNet(name, p, await measureLink(link, work, p)));
    } finally {
      await link.stopRelay();
    }
  }
} finally {
  await fast.stop();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
