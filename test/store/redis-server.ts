// The real redis-server (Debian redis-server, /usr/bin/redis-server) on a free loopback port in
// a temporary directory, without persistence (`--save '' --appendonly no`) unless `persist`
// (append-only file, fsync at every write: what a site keeping its accounts in Redis runs). Tests
// may stop it (SIGKILL, as a crash) and start it again on the same port to see a gateway ride out
// an outage; with `persist` it comes back with its data.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { needTool } from '../helpers/clamd.js';
import { freePorts, tcpAccepts, waitFor } from '../helpers/wait.js';

export const REDIS_SERVER = process.env.PORTCULLIS_REDIS_SERVER || '/usr/bin/redis-server';

export const needRedis = (t: TestContext) => needTool(t, REDIS_SERVER, 'redis-server');

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT/DB */
  url(db?: number): string;
  /** Kills the server (SIGKILL: no goodbye to clients) and waits for it to be gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung server). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Starts it again on the same port (empty, unless started with `persist`). */
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Keep the data across kill/start (appendonly, appendfsync always). */
  readonly persist?: boolean;
  /** Extra arguments (e.g. `--replicaof`). */
  readonly args?: readonly string[];
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-redis-'));
  const [port] = await freePorts(1);
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      ...(options.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']), '--protected-mode', 'no', ...(options.args ?? [])], {
      cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(`redis-server on port ${port}`, () => tcpAccepts(port!), { timeoutMs: 10_000, intervalMs: 50, details: () => log.slice(-2000) });
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port: port!,
    url: (db = 0) => `redis://127.0.0.1:${port}/${db}`,
    kill,
    start,
    pause: async () => { child?.kill('SIGSTOP'); },
    resume: async () => { child?.kill('SIGCONT'); },
    stop: async () => {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
