// The quarantine index shared by several nodes through one Redis (src/quarantine/shared-index.ts),
// against a real redis-server: an entry held on node A is listed and searched on node B, its
// headers and original read, released and deleted from B (done by A, which holds the original);
// a Redis outage delays the exchange and loses nothing; a node joining announces what it held
// before; a lost log is rebuilt; bounds dropped on the holder leave every index; states converge.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, test, type TestContext } from 'node:test';
import { createLogger } from '../../src/log.js';
import { Quarantine, QuarantineError, type QuarantineEntry, type Releaser } from '../../src/quarantine/quarantine.js';
import { quarantineConfigSchema } from '../../src/quarantine/config.js';
import { SharedQuarantineIndex } from '../../src/quarantine/shared-index.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, redisCli, startRedis, type RedisServer } from '../store/redis-server.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-qshare-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;

interface Node {
  q: Quarantine;
  share: SharedQuarantineIndex;
  lines: Record<string, unknown>[];
  released: string[][];
  dir: string;
  close(): Promise<void>;
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  return { logger: createLogger('info', sink), lines };
}

/** A quarantine on its own data directory; shared through `redis` unless `shared` is false. */
function node(redis: RedisServer, opts: { dir?: string; config?: Record<string, unknown>; prefix?: string; shared?: boolean; callTimeoutMs?: number } = {}): Node {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(tmpRoot, `n${++n}-`));
  const { logger, lines } = capture();
  const released: string[][] = [];
  const releaser: Releaser = async ({ recipients }) => {
    released.push(recipients.map((r) => r.address));
    return recipients.map((r) => ({ address: r.address, status: 'delivered' as const, reply: 'delivered to INBOX' }));
  };
  const q = Quarantine.open({ dataDir: dir, config: quarantineConfigSchema.parse(opts.config ?? {}), logger, fsync: false, expireIntervalMs: 0, releaser, shared: true });
  const share = SharedQuarantineIndex.start(q, {
    url: redis.url(0), prefix: opts.prefix ?? 'qs:', logger, maxAgeMs: 14 * 86_400_000, hostname: `mx${n}.example.test`,
    timeoutMs: 300, callTimeoutMs: opts.callTimeoutMs ?? 5000,
  });
  return { q, share, lines, released, dir, close: async () => { await share.close(); q.close(); } };
}

type NodeOptions = Parameters<typeof node>[1];

/** A redis-server and two nodes on it, all stopped after the test. */
async function twoNodes(t: TestContext, optsA: NodeOptions = {}, optsB: NodeOptions = {}, persist = false) {
  const redis = await startRedis({ persist });
  t.after(() => redis.stop());
  const a = node(redis, optsA);
  const b = node(redis, optsB);
  t.after(async () => { await a.close(); await b.close(); });
  return { redis, a, b };
}

const mail = (subject: string) => Buffer.from(`From: a@example.net\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.net>\r\n\r\nbody of ${subject}\r\n`);
const entry = (over: Partial<QuarantineEntry> = {}): QuarantineEntry => ({
  reason: 'policy_band', sender: 'spammer@example.net', recipients: ['alice@example.test', 'bob@example.test'], symbols: [{ name: 'GTUBE', score: 1000, reason: 'test string' }], ...over,
});
const ids = (q: Quarantine, query = {}) => q.list(query).items.map((i) => i.id);

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('two nodes share one index: listed, searched, read, released and deleted from the node that does not hold it', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const { a, b } = await twoNodes(t);

  const raw = mail('Invoice overdue 4711');
  const id = await a.q.add(entry(), raw);
  await waitFor('the entry listed on node B', () => ids(b.q).includes(id));
  const seen = b.q.get(id)!;
  assert.equal(seen.node, a.share.node, 'node B names the node holding the original');
  assert.equal(a.q.get(id)!.node, undefined, 'node A holds it itself');
  assert.equal(seen.subject, 'Invoice overdue 4711');
  assert.deepEqual(seen.recipients.map((r) => r.address), ['alice@example.test', 'bob@example.test']);
  // Full-text search and the per-user view run on B's own index.
  assert.deepEqual(ids(b.q, { search: 'overdue 47' }), [id]);
  assert.deepEqual(ids(b.q, { recipient: 'bob@example.test' }), [id]);
  assert.deepEqual(ids(b.q, { search: 'no such words' }), []);
  // The bounds and totals are each node's own disk.
  assert.equal(a.q.totals().count, 1);
  assert.equal(b.q.totals().count, 0);

  // Headers and the original come from A.
  const headers = await b.q.headers(id);
  assert.equal(headers.find((h) => h.name.toLowerCase() === 'subject')?.value, 'Invoice overdue 4711');
  assert.deepEqual(await readAll(b.q.original(id)), raw, 'byte-identical through node B');

  // Released from B for alice: A's releaser delivers it, and B lists the new state at once.
  const result = await b.q.release(id, { by: 'admin@b', recipient: 'alice@example.test' });
  assert.deepEqual(result.recipients, [{ address: 'alice@example.test', status: 'delivered', reply: 'delivered to INBOX' }]);
  assert.deepEqual(a.released, [['alice@example.test']], 'delivered by the holder');
  assert.deepEqual(b.released, [], 'not by the node that asked');
  const afterRelease = b.q.get(id, 'alice@example.test')!;
  assert.equal(afterRelease.state, 'released');
  assert.equal(afterRelease.recipients[0]!.by, 'admin@b');
  assert.ok(a.lines.some((l) => l.event === 'quarantine_peer_request' && l.method === 'release' && l.outcome === 'ok'));
  // Releasing again is refused by the holder, and the refusal comes back as it is.
  await assert.rejects(b.q.release(id, { by: 'admin@b', recipient: 'alice@example.test' }), (e: unknown) => e instanceof QuarantineError && e.code === 'NOT_HELD');

  // Deleted from B for everyone: A removes the original.
  const file = path.join(a.dir, 'quarantine', 'messages', id[0]!, `${id}.eml`);
  assert.ok(fs.existsSync(file));
  await b.q.delete(id, { by: 'admin@b' });
  await waitFor('the original removed on node A', () => !fs.existsSync(file));
  assert.equal(a.q.get(id)!.state, 'deleted', 'every copy, on the holder too');
  assert.equal(a.q.get(id, 'bob@example.test')!.recipients[0]!.by, 'admin@b');
  assert.equal(a.q.totals().count, 0, 'the holder counts the original gone');
  assert.throws(() => b.q.original(id), (e: unknown) => e instanceof QuarantineError && e.code === 'GONE');
});

test('Redis down: the holder goes on quarantining, requests fail clearly, and the changes arrive when Redis is back', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const { redis, a, b } = await twoNodes(t, {}, { callTimeoutMs: 1500 }, true);
  const first = await a.q.add(entry(), mail('before the outage'));
  await waitFor('the first entry on B', () => ids(b.q).includes(first));

  await redis.kill();
  const during = await a.q.add(entry(), mail('during the outage'));
  assert.ok(ids(a.q).includes(during), 'holding never waits for Redis');
  await assert.rejects(b.q.release(first, { by: 'admin@b' }), (e: unknown) => e instanceof QuarantineError && e.code === 'UNAVAILABLE' && /cannot be reached|did not answer/.test(e.message));
  await waitFor('the outage logged', () => a.lines.some((l) => l.event === 'quarantine_share_down'));

  await redis.start();
  await waitFor('the entry held during the outage reaches B', () => ids(b.q).includes(during), { timeoutMs: 20_000 });
  await waitFor('the recovery logged', () => a.lines.some((l) => l.event === 'quarantine_share_up'));
  const r = await b.q.release(first, { by: 'admin@b' });
  assert.equal(r.recipients.length, 2);
});

test('a node joining announces what it held before; a flushed Redis is rebuilt from every node\'s own entries', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  // Node C held mail on its own before the site grew (store.backend was sqlite).
  const dirC = fs.mkdtempSync(path.join(tmpRoot, 'c-'));
  const lone = Quarantine.open({ dataDir: dirC, config: quarantineConfigSchema.parse({}), logger: capture().logger, fsync: false, expireIntervalMs: 0 });
  const old = await lone.add(entry({ reason: 'virus' }), mail('held before sharing'));
  lone.close();

  const a = node(redis);
  const early = await a.q.add(entry(), mail('A held this first'));
  const c = node(redis, { dir: dirC });
  t.after(async () => { await a.close(); await c.close(); });
  await waitFor('C\'s old entry on A', () => ids(a.q).includes(old));
  await waitFor('A\'s history on C', () => ids(c.q).includes(early));
  assert.ok(c.lines.some((l) => l.event === 'quarantine_announced' && l.entries === 1));

  // Redis loses everything: each node announces its own again, and each index stays whole.
  await redisCli(redis.port, 'FLUSHALL');
  const after = await a.q.add(entry(), mail('after the flush'));
  await waitFor('the new entry on C', () => ids(c.q).includes(after), { timeoutMs: 20_000 });
  await waitFor('both nodes saw the log gone', () => a.lines.some((l) => l.event === 'quarantine_log_lost') && c.lines.some((l) => l.event === 'quarantine_log_lost'), { timeoutMs: 20_000 });
  assert.deepEqual(new Set(ids(a.q)), new Set([old, early, after]));
  assert.deepEqual(new Set(ids(c.q)), new Set([old, early, after]));
  // Nothing twice.
  assert.equal(ids(c.q).length, 3);
});

test('an entry the holder drops for its bounds leaves the other indexes; a junk log entry changes nothing', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const { redis, a, b } = await twoNodes(t, { config: { max_messages: 1 } });
  const one = await a.q.add(entry(), mail('one'));
  await waitFor('one on B', () => ids(b.q).includes(one));
  await redisCli(redis.port, 'XADD', 'qs:{quar}:log', '*', 'o', 'intruder', 'e', '{not json');
  const two = await a.q.add(entry(), mail('two'));
  await waitFor('two replaces one on B', () => ids(b.q).includes(two) && !ids(b.q).includes(one));
  assert.ok(b.lines.some((l) => l.event === 'quarantine_log_bad_entry'));
  assert.ok(a.lines.some((l) => l.event === 'quarantine_dropped' && l.quarantine_id === one));
});

test('concurrent changes of one recipient converge on the later one on every node', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const { redis, a, b } = await twoNodes(t);
  const id = await a.q.add(entry({ recipients: ['alice@example.test'] }), mail('contested'));
  await waitFor('on B', () => ids(b.q).includes(id));
  // Both delete alice's copy at once, B a moment later than A: whatever order the two changes
  // reach each node in, both keep B's (the later) record.
  await redisCli(redis.port, 'CLIENT', 'PAUSE', '300', 'WRITE');
  await Promise.all([a.q.delete(id, { by: 'first@a' }), new Promise((r) => setTimeout(r, 20)).then(() => b.q.delete(id, { by: 'second@b' }))]);
  await waitFor('both nodes agree', () => a.q.get(id)?.recipients[0]?.by === 'second@b' && b.q.get(id)?.recipients[0]?.by === 'second@b', { timeoutMs: 10_000 });
});

test('a change made offline on a shared index is handed on at the next start; a node leaving forgets the others\' entries', { timeout: 60_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = node(redis);
  let b = node(redis);
  t.after(async () => { await a.close(); await b.close(); });
  const id = await a.q.add(entry(), mail('deleted offline'));
  await waitFor('on B', () => ids(b.q).includes(id));
  await b.close();

  // `portcullis quarantine delete` on B while B's gateway is stopped: no Redis in that process.
  const offline = Quarantine.open({ dataDir: b.dir, config: quarantineConfigSchema.parse({}), logger: capture().logger, fsync: false, expireIntervalMs: 0, shared: true });
  await offline.delete(id, { by: 'cli:root' });
  assert.equal(offline.outbox().length, 1, 'the change waits in the outbox');
  offline.close();
  const file = path.join(a.dir, 'quarantine', 'messages', id[0]!, `${id}.eml`);
  assert.ok(fs.existsSync(file));
  b = node(redis, { dir: b.dir });
  await waitFor('the holder removes the original', () => !fs.existsSync(file));
  assert.equal(a.q.get(id)!.recipients[0]!.by, 'cli:root');
  await b.close();

  // B goes back to store.backend: sqlite: the entries it does not hold are forgotten.
  const { logger, lines } = capture();
  const alone = Quarantine.open({ dataDir: b.dir, config: quarantineConfigSchema.parse({}), logger, fsync: false, expireIntervalMs: 0 });
  t.after(() => alone.close());
  assert.deepEqual(ids(alone, { state: 'deleted' }), []);
  assert.ok(lines.some((l) => l.event === 'quarantine_unshared' && l.forgotten === 1));
  b = node(redis); // (a fresh node for the after hook)
});
