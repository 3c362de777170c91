// The real redis-server (Debian redis-server, /usr/bin/redis-server) on a free loopback port in
// a temporary directory, without persistence (`--save '' --appendonly no`) unless `persist`
// (append-only file, fsync at every write: what a site keeping its accounts in Redis runs). Tests
// may stop it (SIGKILL, as a crash) and start it again on the same port to see a gateway ride out
// an outage; with `persist` it comes back with its data. startRedisCluster and startRedisSentinel
// build a real Cluster (redis-cli --cluster create) and a master with replicas watched by a
// sentinel (`redis-server sentinel.conf --sentinel`) from the same servers.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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

export const REDIS_CLI = process.env.PORTCULLIS_REDIS_CLI || '/usr/bin/redis-cli';

/** redis-cli against a loopback port: one command, its reply as text (redis-cli exits 0 even on a Redis error reply). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

export interface RedisClusterSet {
  /** Every server (masters first, as redis-cli assigns them), each with its own directory and nodes.conf. */
  readonly nodes: readonly RedisServer[];
  /** What `store.cluster.nodes` lists. */
  readonly seeds: { host: string; port: number }[];
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` masters (and `replicas` replicas of each) on loopback: each
 * server with `--cluster-enabled yes` and an explicit bus port (free, rather than port + 10000),
 * joined by `redis-cli --cluster create`; returns once every node reports cluster_state:ok.
 */
export async function startRedisCluster(masters = 3, replicas = 0): Promise<RedisClusterSet> {
  const buses = await freePorts(masters * (1 + replicas));
  const nodes: RedisServer[] = [];
  try {
    for (const bus of buses) {
      nodes.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    await promisify(execFile)(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
    for (const n of nodes) {
      await waitFor(`cluster_state:ok on ${n.port}`, async () => /cluster_state:ok/.test(await redisCli(n.port, 'cluster', 'info')), { timeoutMs: 20_000, intervalMs: 100 });
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    stop: async () => { await Promise.all(nodes.map((n) => n.stop())); },
  };
}

export interface RedisSentinelSet {
  readonly master: RedisServer;
  /** Replicas of the master; the first is the sentinel's first choice (replica-priority 10, the others 100). */
  readonly replicas: readonly RedisServer[];
  /** The name the sentinel watches (`store.sentinel.name`). */
  readonly name: string;
  readonly sentinelPort: number;
  /** The port of the master the sentinel names now. */
  currentMaster(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One master, `replicas` replicas of it, one sentinel watching them (`redis-server <conf>
 * --sentinel`, quorum 1, a master down after 1 s of silence). Returns once the replicas are in
 * sync and the sentinel knows them, so that a failover has somewhere to go. (A demoted old
 * master is turned into a replica only at the sentinel's next INFO round, up to 10 s later: a
 * second replica makes a second failover possible at once.)
 */
export async function startRedisSentinel(name = 'portcullis-test', replicaCount = 2): Promise<RedisSentinelSet> {
  const master = await startRedis();
  const replicas: RedisServer[] = [];
  for (let i = 0; i < replicaCount; i++) {
    replicas.push(await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port), '--replica-priority', i === 0 ? '10' : '100'] }));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-sentinel-'));
  const [sentinelPort] = await freePorts(1);
  // The sentinel rewrites its file (what it learns of replicas and epochs): it must be writable.
  fs.writeFileSync(path.join(dir, 'sentinel.conf'), [
    `port ${sentinelPort}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 10000`,
    `sentinel parallel-syncs ${name} ${replicaCount}`, '',
  ].join('\n'));
  let log = '';
  const child = spawn(REDIS_SERVER, [path.join(dir, 'sentinel.conf'), '--sentinel'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    await Promise.all([master.stop(), ...replicas.map((r) => r.stop())]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`sentinel on port ${sentinelPort}`, () => tcpAccepts(sentinelPort!), { timeoutMs: 10_000, intervalMs: 50, details: () => log.slice(-2000) });
    for (const r of replicas) {
      await waitFor(`replica ${r.port} in sync`, async () => /master_link_status:up/.test(await redisCli(r.port, 'info', 'replication')), { timeoutMs: 15_000, intervalMs: 100 });
    }
    await waitFor('the sentinel knowing the replicas', async () => {
      const known = await redisCli(sentinelPort!, 'sentinel', 'replicas', name);
      return replicas.every((r) => known.includes(String(r.port)));
    }, { timeoutMs: 20_000, intervalMs: 200, details: () => log.slice(-2000) });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    master, replicas, name, sentinelPort: sentinelPort!,
    currentMaster: async () => Number((await redisCli(sentinelPort!, 'sentinel', 'get-master-addr-by-name', name)).trim().split('\n')[1]),
    stop,
  };
}
