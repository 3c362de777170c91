// The real rbldnsd (Debian's /usr/sbin/rbldnsd) serving test zones on a free loopback UDP port.
// It refuses to run as root: as root it drops to the rbldns user and chroots to the zone folder.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { createResolver } from '../../src/dns/resolver.js';
import { strict } from './clients.js';

export const RBLDNSD = '/usr/sbin/rbldnsd';

/** False (and the test skipped) without rbldnsd; in CI a missing rbldnsd is a failure. */
export function needRbldnsd(t: TestContext): boolean {
  if (fs.existsSync(RBLDNSD)) return true;
  if (strict) throw new Error(`required tool missing: ${RBLDNSD} (apt-get install rbldnsd)`);
  t.skip(`${RBLDNSD} not installed (apt-get install rbldnsd)`);
  return false;
}

export interface Rbldnsd {
  readonly port: number;
  /** "127.0.0.1:PORT" for dns.servers. */
  readonly server: string;
  readonly dir: string;
  stop(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => sock.once('error', reject).bind(0, '127.0.0.1', resolve));
  const p = sock.address().port;
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return p;
}

/**
 * Writes `files` (name → zone text) into a fresh folder and serves `specs` ("zone:type:file").
 * Ready when `probe` (a listed query name) answers.
 */
export async function startRbldnsd(files: Record<string, string>, specs: string[], probe: string): Promise<Rbldnsd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-rbldnsd-'));
  fs.chmodSync(dir, 0o755); // read by the rbldns user inside its chroot
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text, { mode: 0o644 });
  const port = await freeUdpPort();
  const who = process.getuid?.() === 0 ? ['-u', 'rbldns', '-r', dir] : ['-w', dir];
  const daemon: ChildProcess = spawn(RBLDNSD, ['-n', ...who, '-b', `127.0.0.1/${port}`, ...specs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  daemon.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const resolver = createResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 200, attempts: 1, maxInflight: 10, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (daemon.exitCode !== null) {
      await stop();
      throw new Error(`rbldnsd exited with ${daemon.exitCode}: ${output}`);
    }
    const r = await resolver.lookup(probe, 'A');
    if (r.status === 'ok') break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`rbldnsd did not answer ${probe} on 127.0.0.1/${port} within 10 s: ${JSON.stringify(r)} ${output}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return { port, server: `127.0.0.1:${port}`, dir, stop };
}
