#!/usr/bin/env node
// A user-space stand-in for a network link (the kernel here has no netem), between the bench's
// ssh clients and its sshd.
//
// Contract: a TCP listener on 127.0.0.1 that, for each connection it accepts, opens one to
// `to` (the sshd) and forwards bytes both ways. Each direction is a link of `mbit` Mbit/s with a
// one-way delay of `rttMs / 2`: a chunk read at time t leaves the link's queue once the chunks
// before it have (serialisation: its bytes ÷ the rate, slices of at most SLICE bytes) and is
// written to the other side `rttMs / 2` later. Bytes and EOFs keep their order (a per-direction
// FIFO with due times); nothing is lost, reordered or jittered. When a direction's queue holds
// more than QUEUE_MS of serialisation, or the receiving socket has more than MAX_UNWRITTEN bytes
// unwritten, its source socket is paused (TCP's own flow control then holds the sender).
// Not modelled: loss, jitter, TCP's slow start over the delay (the kernel acknowledges each
// loopback segment at once, so each TCP connection sees loopback; only end-to-end protocols, such
// as ssh's channel windows and request/reply exchanges, see the delay).
//
// As a module: startRelay({ to, rttMs, mbit }) → { port, close() } in this process, or
// spawnRelay(...) → { port, pid, stop() } in a child process (so a busy bench's event loop does
// not stall the link). As a program:
//   node bench/lib/relay.mjs --to 2222 --rtt 30 --mbit 50 [--port 0]
// prints {"port":N} on stdout once listening and runs until SIGTERM or SIGINT (with
// --watch-stdin, which spawnRelay passes, also until its stdin ends: the bench's death ends it).
import { createServer, connect } from 'node:net';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

/** Largest piece paced on its own: 16 KiB is 2.6 ms at 50 Mbit/s, 13 ms at 10 Mbit/s. */
const SLICE = 16 * 1024;
/** Serialisation backlog (ms) above which the sending socket is paused. */
const QUEUE_MS = 50;
/** Bytes unwritten to the receiving socket above which the sending socket is paused. */
const MAX_UNWRITTEN = 1 << 20;

/** ms it takes to put `bytes` on a link of `mbit` Mbit/s (0 for an unlimited link). */
export const serialisationMs = (bytes, mbit) => (mbit > 0 ? (bytes * 8) / (mbit * 1000) : 0);

/**
 * One direction of the link: bytes read from `src` are written to `dst` after their
 * serialisation and the one-way delay, in order. Returns { onData, onEnd } for src's events.
 */
function direction(src, dst, { oneWayMs, mbit }) {
  const fifo = []; // { buf | eof, at } in due order
  let busyUntil = 0; // when the link has put the last queued byte on the wire
  let timer = null;
  let paused = false;
  let flowTimer = null;

  const backlogMs = () => Math.max(0, busyUntil - performance.now());
  function flow() {
    const full = backlogMs() > QUEUE_MS || dst.writableLength > MAX_UNWRITTEN;
    if (full && !paused) {
      paused = true;
      src.pause();
    } else if (!full && paused) {
      paused = false;
      src.resume();
    }
    if (paused && backlogMs() > QUEUE_MS && !flowTimer) {
      flowTimer = setTimeout(
        () => {
          flowTimer = null;
          flow();
        },
        backlogMs() - QUEUE_MS + 1,
      );
    }
  }
  dst.on('drain', flow);

  function deliver() {
    timer = null;
    const now = performance.now();
    while (fifo.length && fifo[0].at <= now + 1) {
      const item = fifo.shift();
      if (dst.destroyed) continue;
      if (item.eof) dst.end();
      else dst.write(item.buf);
    }
    arm();
    flow();
  }
  function arm() {
    if (timer || !fifo.length) return;
    timer = setTimeout(deliver, Math.max(0, Math.floor(fifo[0].at - performance.now())));
  }
  function enqueue(item, bytes) {
    const start = Math.max(performance.now(), busyUntil);
    busyUntil = start + serialisationMs(bytes, mbit);
    fifo.push({ ...item, at: busyUntil + oneWayMs });
    arm();
  }

  let ended = false;
  return {
    onData(chunk) {
      for (let o = 0; o < chunk.length; o += SLICE) {
        const buf = chunk.subarray(o, o + SLICE);
        enqueue({ buf }, buf.length);
      }
      flow();
    },
    onEnd() {
      if (ended) return;
      ended = true;
      enqueue({ eof: true }, 0);
    },
  };
}

/** Joins a client socket and its upstream socket through two directions of the link. */
function pair(client, upstream, link) {
  for (const s of [client, upstream]) s.setNoDelay(true);
  const up = direction(client, upstream, link);
  const down = direction(upstream, client, link);
  client.on('data', up.onData);
  upstream.on('data', down.onData);
  client.on('end', up.onEnd);
  upstream.on('end', down.onEnd);
  const kill = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', kill);
  upstream.on('error', kill);
  // A side gone without a FIN (destroyed): its direction still ends in order.
  client.on('close', up.onEnd);
  upstream.on('close', down.onEnd);
}

/** The relay in this process. to: port (on 127.0.0.1) or { host, port }. */
export function startRelay({ to, rttMs, mbit, port = 0 }) {
  const target = typeof to === 'object' ? to : { host: '127.0.0.1', port: Number(to) };
  const link = { oneWayMs: rttMs / 2, mbit };
  const sockets = new Set();
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const upstream = connect({ ...target, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pair(client, upstream, link);
    client.resume();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({
        port: server.address().port,
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      }),
    );
  });
}

/** The relay as a child process (this file run as a program); resolves once it listens. */
export function spawnRelay({ to, rttMs, mbit }) {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [self, '--to', String(to), '--rtt', String(rttMs), '--mbit', String(mbit), '--watch-stdin'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise((r) => child.on('close', r));
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`relay exited (${code}) before listening: ${out}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (!m) return;
      resolve({
        port: Number(m[1]),
        pid: child.pid,
        async stop() {
          child.stdin.end(); // the relay exits when its stdin ends
          const t = setTimeout(() => child.kill('SIGTERM'), 2000);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      to: { type: 'string' },
      rtt: { type: 'string', default: '0' },
      mbit: { type: 'string', default: '0' },
      port: { type: 'string', default: '0' },
      'watch-stdin': { type: 'boolean', default: false },
    },
  });
  if (!values.to) throw new Error('usage: relay.mjs --to PORT --rtt MS --mbit N [--port P]');
  const relay = await startRelay({
    to: values.to,
    rttMs: Number(values.rtt),
    mbit: Number(values.mbit),
    port: Number(values.port),
  });
  process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
  const bye = () => relay.close().finally(() => process.exit(0));
  if (values['watch-stdin']) {
    process.stdin.on('end', bye);
    process.stdin.resume();
  }
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
