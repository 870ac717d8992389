import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The web UI's two files in the data directory: web-token (the daemon's random token) and
 * web.json (its port and pid), both 0600. The daemon writes them when it listens and removes
 * its own at close; `lipsync web-url` reads them (readWebInfo).
 */

export const webFiles = (dataDir: string) => ({
  token: join(dataDir, 'web-token'),
  info: join(dataDir, 'web.json'),
});

/** Writes both files (0600, each by a rename: a reader never sees half of one). */
export function writeWebFiles(dataDir: string, token: string, port: number): void {
  const files = webFiles(dataDir);
  const write = (file: string, text: string) => {
    const tmp = `${file}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  };
  write(files.token, token + '\n');
  write(files.info, JSON.stringify({ port, pid: process.pid }) + '\n');
}

/** Removes the files if they are still this daemon's (the token file holds `token`). */
export function removeWebFiles(dataDir: string, token: string): void {
  const files = webFiles(dataDir);
  for (const f of [files.token, files.info]) {
    // Only ours: a newer daemon may have written its own meanwhile.
    try {
      if (f === files.token && readFileSync(f, 'utf8').trim() !== token) continue;
      rmSync(f, { force: true });
    } catch {
      // already gone
    }
  }
}

/** The web UI's address of the running daemon, or null when none serves one. */
export async function readWebInfo(dataDir: string): Promise<{ url: string; port: number; token: string } | null> {
  const files = webFiles(dataDir);
  try {
    const token = readFileSync(files.token, 'utf8').trim();
    const info = JSON.parse(readFileSync(files.info, 'utf8')) as { port?: unknown; pid?: unknown };
    if (typeof info.port !== 'number' || typeof info.pid !== 'number' || !/^[0-9a-f]{64}$/.test(token)) return null;
    try {
      process.kill(info.pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null; // the daemon died
    }
    return { url: `http://127.0.0.1:${info.port}/#token=${token}`, port: info.port, token };
  } catch {
    return null;
  }
}
