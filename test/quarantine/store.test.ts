// The quarantine store on its own (src/quarantine/quarantine.ts): originals byte-identical, the
// index and its queries (per recipient, search, cursor pages, on the indexes — EXPLAIN QUERY PLAN —
// and fast at 100,000 rows), retention by age / size / count with each drop logged, restarts,
// failures that leave nothing behind, and hostile MIME from the conformance corpus indexed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createLogger } from '../../src/log.js';
import { newId, Quarantine, QuarantineError, type QuarantineEntry, type Releaser } from '../../src/quarantine/quarantine.js';
import { quarantineConfigSchema } from '../../src/quarantine/config.js';
import { sharedDir } from '../helpers/paths.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-qstore-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
const freshDir = () => fs.mkdtempSync(path.join(tmpRoot, `d${++n}-`));

/** A logger whose JSON lines the test reads. */
function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  return { logger: createLogger('info', sink), lines };
}

const DAY = 86_400_000;
const config = (over: Record<string, unknown> = {}) => quarantineConfigSchema.parse(over);

function open(dataDir: string, over: Record<string, unknown> = {}, extra: Partial<Parameters<typeof Quarantine.open>[0]> = {}) {
  const log = capture();
  const q = Quarantine.open({ dataDir, config: config(over), logger: log.logger, fsync: false, expireIntervalMs: 0, ...extra });
  return { q, lines: log.lines };
}

const mail = (subject: string, body = 'hello\r\n', extra = '') =>
  Buffer.from(`From: a@example.net\r\nTo: u@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.net>\r\n${extra}\r\n${body}`, 'utf8');

const entry = (over: Partial<QuarantineEntry> = {}): QuarantineEntry => ({
  reason: 'policy_band', sender: 's@example.net', recipients: ['alice@example.test'], symbols: [{ name: 'GTUBE', score: 1, reason: 'test string' }], ...over,
});

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('the quarantine store', () => {
  it('keeps the original byte-identical (Buffer or stream), mode 0600, nothing left in tmp/; decodes the subject', async () => {
    const dir = freshDir();
    const { q } = open(dir);
    const raw = mail('=?UTF-8?B?R3LDvMOfZSDinJM=?=', 'bare\nLF and 8-bit é bytes\r\n.\r\n');
    const id1 = await q.add(entry(), raw);
    const id2 = await q.add(entry({ reason: 'virus' }), Readable.from([raw.subarray(0, 7), raw.subarray(7)]));
    assert.match(id1, /^[A-Za-z0-9_-]{16}$/);
    assert.notEqual(id1, id2);
    // An id never looks like a command-line option (1 in 32 plain base64url ids would).
    const drawn = Array.from({ length: 5000 }, newId);
    assert.ok(drawn.every((id) => /^[A-Za-z0-9][A-Za-z0-9_-]{15}$/.test(id)), drawn.find((id) => !/^[A-Za-z0-9]/.test(id)));
    for (const id of [id1, id2]) {
      assert.ok((await readAll(q.original(id))).equals(raw));
      const file = path.join(dir, 'quarantine', 'messages', id[0]!, `${id}.eml`);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'quarantine', 'tmp')), []);
    const item = q.get(id1)!;
    assert.equal(item.subject, 'Grüße ✓');
    assert.equal(item.messageId, '<UTF8BR3LDvMOfZSDinJM@example.net>');
    assert.equal(item.size, raw.length);
    assert.deepEqual(item.symbols, [{ name: 'GTUBE', score: 1, reason: 'test string' }]);
    assert.deepEqual((await q.headers(id1)).find((h) => h.name === 'Subject'), { name: 'Subject', value: 'Grüße ✓' });
    assert.deepEqual(q.stats(), { count: 2, bytes: 2 * raw.length, byReason: { policy_band: 1, virus: 1 } });
    q.close();
  });

  it('one row per recipient: a user lists and gets only their own; other ids are not found for them', async () => {
    const { q } = open(freshDir());
    const both = await q.add(entry({ recipients: ['Alice@Example.test', 'bob@example.test'] }), mail('both'));
    const bobs = await q.add(entry({ recipients: ['bob@example.test'] }), mail('bob only'));
    const alice = q.list({ recipient: 'alice@example.test' });
    assert.deepEqual(alice.items.map((i) => i.id), [both]);
    assert.deepEqual(alice.items[0]!.recipients.map((r) => r.address), ['alice@example.test']);
    assert.deepEqual(q.list({ recipient: 'bob@example.test' }).items.map((i) => i.id), [bobs, both]);
    assert.equal(q.get(bobs, 'alice@example.test'), undefined);
    await assert.rejects(q.release(bobs, { by: 'alice', recipient: 'alice@example.test' }), (e: QuarantineError) => e.code === 'NOT_FOUND');
    await assert.rejects(q.delete(bobs, { by: 'alice', recipient: 'alice@example.test' }), (e: QuarantineError) => e.code === 'NOT_FOUND');
    q.close();
  });

  it('pages newest first with a cursor, no entry twice or missed; filters by reason and state; refuses bad queries by name', async () => {
    let t = Date.UTC(2026, 0, 1);
    const { q } = open(freshDir(), {}, { now: () => t });
    const ids: string[] = [];
    for (let k = 0; k < 120; k++) {
      t += k % 3 === 0 ? 0 : 1000; // equal times too: the id breaks ties
      ids.push(await q.add(entry({ reason: k % 2 ? 'virus' : 'attachment_stripped' }), mail(`m${k}`)));
    }
    const seen: string[] = [];
    let before: string | undefined;
    let pages = 0;
    do {
      const page = q.list({ limit: 50, before });
      seen.push(...page.items.map((i) => i.id));
      before = page.next;
      pages++;
    } while (before);
    assert.equal(pages, 3);
    assert.equal(new Set(seen).size, 120);
    const times = seen.map((id) => Date.parse(q.get(id)!.time));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assert.equal(q.list({ reason: 'virus', limit: 500 }).items.length, 60);
    assert.ok(q.list({ reason: 'virus', limit: 500 }).items.every((i) => i.reason === 'virus'));
    assert.equal(q.list({ state: 'released' }).items.length, 0);
    for (const [bad, re] of [[{ limit: 0 }, /limit/], [{ limit: 501 }, /limit/], [{ reason: 'spam' }, /reason must be one of/], [{ state: 'gone' }, /state must be one of/], [{ before: 'xyz' }, /not a quarantine cursor/]] as const) {
      assert.throws(() => q.list(bad as never), (e: QuarantineError) => e.code === 'INVALID' && re.test(e.message), JSON.stringify(bad));
    }
    q.close();
  });

  it('search: substrings of subject, sender, recipient or Message-ID, any case and script; short terms and LIKE wildcards taken literally', async () => {
    const { q } = open(freshDir());
    const a = await q.add(entry({ sender: 'billing@invoices.example' }), mail('Your Invoice 4711'));
    const b = await q.add(entry({ recipients: ['carol@second.test'] }), mail('Привет, мир'));
    const c = await q.add(entry(), mail('100% free'));
    const ids = (search: string) => q.list({ search }).items.map((i) => i.id).sort();
    assert.deepEqual(ids('invoice'), [a]);
    assert.deepEqual(ids('INVOICES.EX'), [a]);
    assert.deepEqual(ids('мир'), [b]);
    assert.deepEqual(ids('carol@'), [b]);
    assert.deepEqual(ids('4711@example'), [a], 'the Message-ID');
    assert.deepEqual(ids('0%'), [c], 'a short term with a wildcard character: literal');
    assert.deepEqual(ids('%'), [c]);
    assert.deepEqual(ids('"quoted'), [], 'quotes do not break the full-text query');
    assert.deepEqual(q.list({ search: 'invoice', recipient: 'carol@second.test' }).items, []);
    q.close();
  });

  it('every listing is an index lookup (EXPLAIN QUERY PLAN): no table scan, no sort but for search results', async () => {
    const { q } = open(freshDir());
    await q.add(entry(), mail('x'));
    const cursor = q.list({ limit: 1 }).next ?? Buffer.from(`${Date.now()}.AAAAAAAAAAAAAAAA`).toString('base64url');
    const forms = [{}, { recipient: 'alice@example.test' }, { reason: 'virus' }, { state: 'held' }, { before: cursor }, { recipient: 'alice@example.test', before: cursor }, { reason: 'virus', before: cursor }];
    for (const form of forms) {
      const plan = q.explain(form);
      assert.ok(plan.some((p) => /USING (COVERING )?INDEX (messages_|recipients_)/.test(p)), `${JSON.stringify(form)}: ${plan.join(' | ')}`);
      assert.ok(!plan.some((p) => /^SCAN (m|r)$/.test(p) || /TEMP B-TREE/.test(p)), `${JSON.stringify(form)}: ${plan.join(' | ')}`);
    }
    const search = q.explain({ search: 'invoice' });
    assert.ok(search.some((p) => /VIRTUAL TABLE/.test(p)) && !search.some((p) => /^SCAN m$/.test(p)), search.join(' | '));
    q.close();
  });

  it('100,000 entries: a page lists well under 200 ms, by every filter and search', { timeout: 180_000 }, async () => {
    const dir = freshDir();
    open(dir).q.close();
    // Rows straight into the index (the originals do not matter for listing).
    const db = new Database(path.join(dir, 'quarantine', 'index.db'));
    const now = Date.now();
    const reasons = ['attachment_stripped', 'attachment_defanged', 'virus', 'policy_band'];
    db.transaction(() => {
      const m = db.prepare(`INSERT INTO messages (id, time, reason, sender, subject, message_id, queue_id, score, symbols, detail, size, state, stored) VALUES (?, ?, ?, ?, ?, ?, ?, 5, '[]', NULL, 1000, 'held', 1)`);
      const r = db.prepare(`INSERT INTO recipients (id, address, time, state) VALUES (?, ?, ?, 'held')`);
      const s = db.prepare('INSERT INTO search (rowid, text) VALUES (?, ?)');
      for (let k = 0; k < 100_000; k++) {
        const id = `id${String(k).padStart(14, '0')}`;
        const time = now - k * 1000;
        const subject = `Subject ${k} ${k % 1000 === 7 ? 'needle' : 'hay'} ${['invoice', 'meeting', 'offer'][k % 3]}`;
        const sender = `sender${k % 5000}@example.net`;
        const rcpt = `user${k % 1000}@example.test`;
        const info = m.run(id, time, reasons[k % 4], sender, subject, `<${k}@example.net>`, `Q${k}`);
        r.run(id, rcpt, time);
        s.run(info.lastInsertRowid, [subject, sender, `<${k}@example.net>`, rcpt].join('\n'));
      }
    })();
    db.close();
    const { q } = open(dir);
    assert.equal(q.stats().count, 100_000);
    const deep = q.list({ limit: 50 });
    const forms: Record<string, Parameters<Quarantine['list']>[0]> = {
      newest: {}, page2: { before: deep.next }, recipient: { recipient: 'user42@example.test' }, reason: { reason: 'virus' },
      search_rare: { search: 'needle' }, search_common: { search: 'invoice' }, recipient_search: { recipient: 'user7@example.test', search: 'needle' },
    };
    // The median of 20 (the machine is shared: a single slow run says more about the neighbours),
    // the worst printed beside it.
    const report: Record<string, { median: number; worst: number }> = {};
    for (const [name, form] of Object.entries(forms)) {
      const ms: number[] = [];
      for (let k = 0; k < 20; k++) {
        const t0 = process.hrtime.bigint();
        const page = q.list({ ...form, limit: 50 });
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        assert.ok(page.items.length > 0, name);
      }
      ms.sort((a, b) => a - b);
      report[name] = { median: Math.round(ms[10]! * 10) / 10, worst: Math.round(ms[ms.length - 1]! * 10) / 10 };
    }
    process.stdout.write(`# quarantine list at 100k rows, 20 runs each (ms): ${JSON.stringify(report)}\n`);
    for (const [name, r] of Object.entries(report)) assert.ok(r.median < 100, `${name}: median ${r.median} ms`);
    q.close();
  });

  it('retention: over max_size or max_messages the oldest go first, each drop logged; past max_age dropped at open and by expire()', async () => {
    let t = Date.UTC(2026, 0, 1);
    const dir = freshDir();
    const body = 'x'.repeat(900) + '\r\n';
    const s = open(dir, { max_size: 3000, max_age: '10d' }, { now: () => t });
    const ids: string[] = [];
    for (let k = 0; k < 4; k++) {
      t += 1000;
      ids.push(await s.q.add(entry(), mail(`size${k}`, body)));
    }
    assert.deepEqual(s.q.list().items.map((i) => i.id), [ids[3], ids[2], ids[1]], 'the oldest dropped to make room');
    assert.ok(s.q.stats().bytes <= 3000);
    const dropped = s.lines.filter((l) => l.event === 'quarantine_dropped');
    assert.deepEqual(dropped.map((l) => [l.quarantine_id, l.cause]), [[ids[0], 'max_size']]);
    assert.ok(!fs.existsSync(path.join(dir, 'quarantine', 'messages', ids[0]![0]!, `${ids[0]}.eml`)), 'its file is gone');
    s.q.close();

    // A restart keeps index, states and totals; a lower bound applies at once.
    const again = open(dir, { max_size: 3000, max_messages: 2, max_age: '10d' }, { now: () => t });
    assert.deepEqual(again.q.list().items.map((i) => i.id), [ids[3], ids[2]]);
    assert.deepEqual(again.lines.filter((l) => l.event === 'quarantine_dropped').map((l) => [l.quarantine_id, l.cause]), [[ids[1], 'max_messages']]);
    assert.equal(again.q.stats().count, 2);
    t += 11 * DAY;
    again.q.expire();
    assert.deepEqual(again.q.list().items, []);
    assert.deepEqual(again.lines.filter((l) => l.event === 'quarantine_dropped' && l.cause === 'max_age').map((l) => l.quarantine_id).sort(), [ids[2], ids[3]].sort());
    assert.deepEqual(again.q.stats(), { count: 0, bytes: 0, byReason: {} });
    again.q.close();
  });

  it('an entry bigger than max_size alone is dropped too (logged): a full quarantine never refuses', async () => {
    const s = open(freshDir(), { max_size: 100 });
    const id = await s.q.add(entry(), mail('huge', 'y'.repeat(500)));
    assert.equal(s.q.get(id), undefined);
    assert.equal(s.lines.find((l) => l.event === 'quarantine_dropped')?.quarantine_id, id);
    s.q.close();
  });

  it('a failed write rejects and leaves nothing behind: no file, no row, totals unchanged', async () => {
    const dir = freshDir();
    const { q } = open(dir);
    const broken = new Readable({ read() { this.push(Buffer.from('Subject: half\r\n')); this.destroy(new Error('client went away')); } });
    await assert.rejects(q.add(entry(), broken), /client went away/);
    await assert.rejects(q.add(entry({ reason: 'nonsense' as never }), mail('x')), (e: QuarantineError) => e.code === 'INVALID');
    await assert.rejects(q.add(entry({ recipients: [] }), mail('x')), (e: QuarantineError) => e.code === 'INVALID');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'quarantine', 'tmp')), []);
    assert.deepEqual(q.list().items, []);
    assert.deepEqual(q.stats(), { count: 0, bytes: 0, byReason: {} });
    q.close();
  });

  it('release: through the releaser, only held recipients, failures stay held; delete keeps the file while a recipient needs it', async () => {
    const calls: string[][] = [];
    let fail = new Set<string>();
    const releaser: Releaser = async ({ recipients, original, size }) => {
      calls.push(recipients.map((r) => r.address));
      assert.equal((await readAll(original())).length, size);
      return recipients.map((r) => ({ address: r.address, status: fail.has(r.address) ? 'failed' : 'delivered', reply: 'ok' }));
    };
    const dir = freshDir();
    const { q, lines } = open(dir, {}, { releaser });
    const id = await q.add(entry({ recipients: ['a@example.test', 'b@example.test', 'c@example.test'] }), mail('rel'));
    fail = new Set(['b@example.test']);
    const r1 = await q.release(id, { by: 'admin' });
    assert.deepEqual(r1.recipients.map((r) => r.status), ['delivered', 'failed', 'delivered']);
    assert.deepEqual(Object.fromEntries(q.get(id)!.recipients.map((r) => [r.address, r.state])), { 'a@example.test': 'released', 'b@example.test': 'held', 'c@example.test': 'released' });
    assert.equal(q.get(id)!.state, 'held');
    fail = new Set();
    await q.release(id, { by: 'admin' });
    assert.deepEqual(calls, [['a@example.test', 'b@example.test', 'c@example.test'], ['b@example.test']], 'the second release sends only what was still held');
    assert.equal(q.get(id)!.state, 'released');
    await assert.rejects(q.release(id, { by: 'admin' }), (e: QuarantineError) => e.code === 'NOT_HELD');
    assert.ok(lines.some((l) => l.event === 'quarantine_released' && l.by === 'admin'));

    const id2 = await q.add(entry({ recipients: ['a@example.test', 'b@example.test'] }), mail('del'));
    const file = path.join(dir, 'quarantine', 'messages', id2[0]!, `${id2}.eml`);
    await q.delete(id2, { by: 'a', recipient: 'a@example.test' });
    assert.ok(fs.existsSync(file), 'b still needs it');
    assert.ok(!q.list({ recipient: 'a@example.test' }).items.some((i) => i.id === id2), 'deleted for a: not in a\'s list');
    assert.ok(q.list({ recipient: 'b@example.test' }).items.some((i) => i.id === id2), 'still in b\'s');
    await q.delete(id2, { by: 'admin' });
    assert.ok(!fs.existsSync(file));
    assert.throws(() => q.original(id2), (e: QuarantineError) => e.code === 'GONE');
    assert.throws(() => q.original('AAAAAAAAAAAAAAAA'), (e: QuarantineError) => e.code === 'NOT_FOUND');
    assert.throws(() => q.original('../../etc/passwd'), (e: QuarantineError) => e.code === 'NOT_FOUND');
    q.close();
    const none = open(dir).q;
    await assert.rejects(none.release(id2, { by: 'x' }), (e: QuarantineError) => e.code === 'NOT_HELD');
    const id3 = await none.add(entry(), mail('noreleaser'));
    await assert.rejects(none.release(id3, { by: 'x' }), (e: QuarantineError) => e.code === 'NO_RELEASER');
    none.close();
  });

  it('hostile MIME from the conformance corpus (torture tests, broken encodings) is indexed, listed, searched and shown without a crash', async () => {
    const root = path.join(sharedDir, 'conformance', 'mime');
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(eml|msg)$/i.test(e.name) && fs.statSync(p).size < 5_000_000) files.push(p);
      }
    };
    walk(root);
    assert.ok(files.length >= 10, `conformance messages found: ${files.length}`);
    const { q } = open(freshDir());
    for (const f of files) {
      const raw = fs.readFileSync(f);
      const id = await q.add(entry({ reason: 'attachment_stripped', detail: `stripped "${path.basename(f)}\u202e\u0000"` }), raw);
      const item = q.get(id)!;
      assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(item.subject), `${f}: control characters in the subject: ${JSON.stringify(item.subject)}`);
      assert.ok(item.subject.length <= 998);
      assert.ok((await readAll(q.original(id))).equals(raw), f);
      await q.headers(id);
    }
    assert.equal(q.list({ limit: 500 }).items.length, files.length);
    for (const s of ['=?', '\u202e', 'a', 'boundary', '"; DROP TABLE messages; --']) q.list({ search: s });
    q.close();
  });
});
