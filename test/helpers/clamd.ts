// The real clamd (Debian clamav-daemon, /usr/sbin/clamd) on a unix socket in a temporary folder,
// with a signature database the tests write themselves: EICAR as a body signature (.ndb) and the
// MD5 of a harmless test payload as a hash signature (.hdb). No freshclam, no network. clamd
// answers PING about 0.1 s after start with so small a database (16 MB RSS). Start it once per
// test file. As root clamd keeps root (no User line), which is fine for a socket in a 0700 folder.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { ClamdClient } from '../../src/checks/av/clamd.js';
import { strict } from './clients.js';

export const CLAMD = process.env.PORTCULLIS_CLAMD || '/usr/sbin/clamd';
export const BSDTAR = '/usr/bin/bsdtar';

/** The EICAR test file (68 bytes), kept in base64 so this source is not itself flagged. */
export const EICAR = Buffer.from('WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=', 'base64');
/** What clamd calls EICAR with our database (.UNOFFICIAL: not from a signed database). */
export const EICAR_SIGNATURE = 'Portcullis.Test.EICAR.UNOFFICIAL';

/** A harmless payload flagged by its MD5 (a "hash signature", like a known malware sample). */
export const HASH_PAYLOAD = Buffer.from('Portcullis antivirus test payload: harmless, flagged by its MD5 only.\n'.repeat(16));
export const HASH_SIGNATURE = 'Portcullis.Test.Hash.UNOFFICIAL';

/** False (and the test skipped) without clamd; in CI or with PORTCULLIS_TEST_STRICT=1 a failure. */
export function needTool(t: TestContext, tool: string, pkg: string): boolean {
  if (fs.existsSync(tool)) return true;
  if (strict) throw new Error(`required tool missing: ${tool} (apt-get install ${pkg})`);
  t.skip(`${tool} not installed (apt-get install ${pkg})`);
  return false;
}

/** For fixture builders that are nice to have (7z: p7zip-full): skipped when missing, even in CI. */
export function wantTool(t: TestContext, tool: string, pkg: string): boolean {
  if (fs.existsSync(tool)) return true;
  t.skip(`${tool} not installed (apt-get install ${pkg}); this fixture cannot be built`);
  return false;
}

export const needClamd = (t: TestContext) => needTool(t, CLAMD, 'clamav-daemon');
export const needBsdtar = (t: TestContext) => needTool(t, BSDTAR, 'libarchive-tools');

export interface Clamd {
  readonly socket: string;
  readonly dir: string;
  readonly pid: number;
  /** clamd's own log (stdout and stderr). */
  output(): string;
  client(options?: { timeoutMs?: number; maxStreamBytes?: number; maxConcurrency?: number }): ClamdClient;
  stop(): Promise<void>;
}

export interface ClamdStartOptions {
  /** clamd's StreamMaxLength (e.g. "1M"); clamd's default is 25M. */
  readonly streamMaxLength?: string;
  /** More clamd.conf lines. */
  readonly extraConfig?: readonly string[];
}

/** Writes the test signature database into `dir`. */
export function writeSignatures(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  // Body signature: the first 32 bytes of EICAR at offset 0 ("name:target:offset:hex").
  fs.writeFileSync(path.join(dir, 'portcullis-test.ndb'), `Portcullis.Test.EICAR:0:0:${EICAR.subarray(0, 32).toString('hex')}\n`);
  // Hash signature ("md5:size:name").
  const md5 = crypto.createHash('md5').update(HASH_PAYLOAD).digest('hex');
  fs.writeFileSync(path.join(dir, 'portcullis-test.hdb'), `${md5}:${HASH_PAYLOAD.length}:Portcullis.Test.Hash\n`);
}

/** Starts clamd and waits for PONG (20 s at most). */
export async function startClamd(options: ClamdStartOptions = {}): Promise<Clamd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-clamd-'));
  const db = path.join(dir, 'db');
  writeSignatures(db);
  const socket = path.join(dir, 'clamd.sock');
  const conf = [
    `LocalSocket ${socket}`,
    'FixStaleSocket yes',
    `DatabaseDirectory ${db}`,
    'Foreground yes',
    `PidFile ${path.join(dir, 'clamd.pid')}`,
    `TemporaryDirectory ${dir}`,
    'LogTime yes',
    ...(options.streamMaxLength ? [`StreamMaxLength ${options.streamMaxLength}`] : []),
    ...(options.extraConfig ?? []),
  ];
  const confFile = path.join(dir, 'clamd.conf');
  fs.writeFileSync(confFile, `${conf.join('\n')}\n`);
  const daemon: ChildProcess = spawn(CLAMD, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  daemon.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM');
      const t = setTimeout(() => daemon.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const client = (o: { timeoutMs?: number; maxStreamBytes?: number; maxConcurrency?: number } = {}) =>
    new ClamdClient({ address: { kind: 'unix', path: socket }, timeoutMs: o.timeoutMs ?? 10_000, maxStreamBytes: o.maxStreamBytes, maxConcurrency: o.maxConcurrency });
  const probe = client({ timeoutMs: 1_000 });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      await stop();
      throw new Error(`clamd exited (${daemon.exitCode ?? daemon.signalCode}) before answering PING:\n${output}`);
    }
    if (fs.existsSync(socket)) {
      try {
        await probe.ping();
        break;
      } catch {
        // not ready yet
      }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`clamd did not answer PING on ${socket} within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socket, dir, pid: daemon.pid!, output: () => output, client, stop };
}
