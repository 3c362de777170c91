// The quarantine through the running gateway, with real clients: nodemailer sends over SMTP, the
// `portcullis quarantine` CLI lists and releases (through the control socket, and offline while
// the gateway is stopped), and the released original is read back from the Maildir byte for byte.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { Sink } from '../helpers/sink.js';
import { compose, fakePe, type Attachment } from '../mime/fixtures.js';
import PostalMime from 'postal-mime';
import { GTUBE_STRING } from '../../src/checks/gtube/gtube.js';
import { createLinks, LinkError } from '../../src/quarantine/links.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';

interface Item {
  id: string;
  reason: string;
  state: string;
  subject: string;
  sender: string;
  queueId?: string;
  size: number;
  detail?: string;
  symbols: Array<{ name: string; score?: number; reason: string }>;
  recipients: Array<{ address: string; state: string; by?: string; at?: string }>;
}

/** A message as nodemailer's composer writes it, with strict CRLF so "byte-identical" compares like with like. */
async function message(subject: string, attachments: Attachment[], text?: string): Promise<Buffer> {
  return Buffer.from((await compose(attachments, { subject, text })).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Sends `raw` as is over SMTP with nodemailer; resolves with the server's final reply. */
async function send(gw: Gateway, to: string[], raw: Buffer): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.ports.mx, secure: false, ignoreTLS: true, name: 'client.example.net' });
  try {
    const info = await transport.sendMail({ envelope: { from: EXT_SENDER, to }, raw });
    return info.response;
  } finally {
    transport.close();
  }
}

async function list(gw: Gateway, ...args: string[]): Promise<Item[]> {
  const r = await gw.cliOk(['quarantine', 'list', '--json', ...args]);
  return (JSON.parse(r.stdout) as { items: Item[] }).items;
}

const inbox = (gw: Gateway, address: string) => gw.readMailbox(address).map((m) => m.content);

describe('the quarantine through the running gateway', { timeout: 240_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      // GTUBE weighs 1 here and asks for the quarantine band.
      config: { policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } } },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  let defangedId = '';
  let defangedOriginal: Buffer = Buffer.alloc(0);

  it('an .exe attachment: delivered defanged, the original kept with its reason and symbols, released byte-identical into the INBOX', async () => {
    const subject = marker('qexe');
    const raw = await message(subject, [{ filename: 'setup.exe', content: fakePe(3000), contentType: 'application/x-msdownload' }]);
    const reply = await send(gw, [USERS.alice.address], raw);
    assert.match(reply, /^250 /);
    const delivered = await gw.waitForMail(USERS.alice.address, subject);
    assert.match(delivered.toString('latin1'), /filename="?setup\.exe\.txt"?/, 'the recipient got the defanged copy');
    const header = /^X-Portcullis-Quarantine: (\S+) /m.exec(delivered.toString('latin1'));
    assert.ok(header, 'the delivered copy names the quarantine entry');

    const items = await list(gw, '--search', subject);
    assert.equal(items.length, 1, JSON.stringify(items));
    const item = items[0]!;
    assert.equal(item.id, header[1]);
    assert.equal(item.reason, 'attachment_defanged');
    assert.equal(item.state, 'held');
    assert.equal(item.subject, subject);
    assert.equal(item.sender, EXT_SENDER);
    assert.equal(item.size, raw.length);
    assert.match(item.detail ?? '', /defanged "setup\.exe"/);
    assert.ok(item.symbols.some((s) => /^ATTACH_/.test(s.name) && s.reason), JSON.stringify(item.symbols));
    assert.deepEqual(item.recipients.map((r) => [r.address, r.state]), [[USERS.alice.address, 'held']]);
    // The log line of the message carries the entry.
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && JSON.stringify(l.quarantine ?? '').includes(item.id)));
    assert.equal((line.quarantine as Array<{ reason: string }>)[0]!.reason, 'attachment_defanged');

    const before = inbox(gw, USERS.alice.address).length;
    const rel = await gw.cliOk(['quarantine', 'release', item.id, '--json']);
    const result = JSON.parse(rel.stdout) as { recipients: Array<{ address: string; status: string }> };
    assert.deepEqual(result.recipients.map((r) => [r.address, r.status]), [[USERS.alice.address, 'delivered']]);
    const files = inbox(gw, USERS.alice.address);
    assert.equal(files.length, before + 1);
    assert.ok(files.some((f) => f.equals(raw)), 'a Maildir file is byte-identical to what was sent');
    const after = (await list(gw, '--search', subject))[0]!;
    assert.equal(after.state, 'released');
    assert.match(after.recipients[0]!.by ?? '', /^cli:/);
    // Released once: a second release is refused, naming why.
    const again = await gw.cli(['quarantine', 'release', item.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /not held/);
    defangedId = item.id;
    defangedOriginal = raw;
  });

  it('a .scr attachment is stripped: reason attachment_stripped', async () => {
    const subject = marker('qscr');
    const raw = await message(subject, [{ filename: 'saver.scr', content: fakePe(2000), contentType: 'application/octet-stream' }]);
    assert.match(await send(gw, [USERS.alice.address], raw), /^250 /);
    const delivered = await gw.waitForMail(USERS.alice.address, subject);
    assert.match(delivered.toString('latin1'), /An attachment was removed from this message/);
    const [item] = await list(gw, '--search', subject, '--reason', 'attachment_stripped');
    assert.ok(item, 'listed under its reason');
    assert.equal(item.recipients[0]!.address, USERS.alice.address);
  });

  let bandId = '';
  let bandOriginal: Buffer = Buffer.alloc(0);

  it('the quarantine band: held per recipient (nothing delivered, not even to Junk), each user sees their own row, released for one', async () => {
    const subject = marker('qband');
    const raw = await message(subject, [], `Hello,\n${GTUBE_STRING}\n`);
    assert.match(await send(gw, [USERS.alice.address, USERS.bob.address], raw), /^250 /);
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && JSON.stringify(l.quarantine ?? '').includes('policy_band') && (l.recipients as string[]).includes(USERS.bob.address)));
    assert.equal(line.action, 'quarantine');
    await sleep(500);
    for (const u of [USERS.alice.address, USERS.bob.address]) {
      assert.ok(!gw.allMailboxFiles().some((m) => m.content.includes(subject)), `nothing delivered for ${u}`);
    }
    const all = await list(gw, '--search', subject);
    assert.equal(all.length, 1);
    assert.equal(all[0]!.reason, 'policy_band');
    assert.ok(all[0]!.symbols.some((s) => s.name === 'GTUBE'));
    assert.deepEqual(all[0]!.recipients.map((r) => r.address).sort(), [USERS.alice.address, USERS.bob.address]);
    const mine = await list(gw, '--search', subject, '--recipient', USERS.bob.address);
    assert.deepEqual(mine[0]!.recipients.map((r) => r.address), [USERS.bob.address], 'a user sees only their own row');
    // Another user's id is not found for them.
    const other = await gw.cli(['quarantine', 'show', all[0]!.id, '--recipient', 'nobody@example.test']);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /no quarantined message/);

    const rel = await gw.cliOk(['quarantine', 'release', all[0]!.id, '--recipient', USERS.alice.address, '--json']);
    assert.deepEqual((JSON.parse(rel.stdout) as { recipients: Array<{ address: string; status: string }> }).recipients.map((r) => [r.address, r.status]), [[USERS.alice.address, 'delivered']]);
    assert.ok(inbox(gw, USERS.alice.address).some((f) => f.equals(raw)), 'alice has the original, byte-identical');
    assert.ok(!inbox(gw, USERS.bob.address).some((f) => f.includes(subject)), 'bob still has nothing');
    const after = (await list(gw, '--search', subject))[0]!;
    assert.equal(after.state, 'held', 'held while bob\'s copy is');
    assert.deepEqual(Object.fromEntries(after.recipients.map((r) => [r.address, r.state])), { [USERS.alice.address]: 'released', [USERS.bob.address]: 'held' });
    bandId = after.id;
    bandOriginal = raw;
  });

  it('restart keeps the index; the offline CLI lists, shows and releases while the gateway is stopped', async () => {
    const beforeIds = (await list(gw)).map((i) => i.id).sort();
    assert.ok(beforeIds.includes(defangedId) && beforeIds.includes(bandId));
    await gw.stop();
    const offline = (await list(gw)).map((i) => i.id).sort();
    assert.deepEqual(offline, beforeIds, 'offline: the same entries');
    const show = JSON.parse((await gw.cliOk(['quarantine', 'show', bandId, '--json'])).stdout) as Item & { headers: Array<{ name: string; value: string }> };
    assert.ok(show.headers.some((h) => h.name === 'Subject' && h.value === show.subject));
    const rel = await gw.cliOk(['quarantine', 'release', bandId, '--recipient', USERS.bob.address, '--json']);
    assert.match(rel.stdout, /"delivered"/);
    assert.ok(inbox(gw, USERS.bob.address).some((f) => f.equals(bandOriginal)), 'released offline: byte-identical in bob\'s INBOX');
    await gw.start();
    const restarted = await list(gw);
    assert.deepEqual(restarted.map((i) => i.id).sort(), beforeIds, 'after a restart: the same entries');
    assert.equal(restarted.find((i) => i.id === bandId)!.state, 'released');
    assert.equal(restarted.find((i) => i.id === defangedId)!.size, defangedOriginal.length);
  });

  it('delete: gone from the default listing, the original removed, listed under --state deleted', async () => {
    await gw.cliOk(['quarantine', 'delete', defangedId]);
    assert.ok(!(await list(gw)).some((i) => i.id === defangedId));
    assert.ok((await list(gw, '--state', 'deleted')).some((i) => i.id === defangedId));
    assert.ok(!fs.existsSync(path.join(gw.dataDir, 'quarantine', 'messages', defangedId[0]!, `${defangedId}.eml`)));
    const stats = JSON.parse((await gw.cliOk(['quarantine', 'stats', '--json'])).stdout) as { count: number; byReason: Record<string, number> };
    assert.equal(stats.byReason.attachment_defanged ?? 0, 0);
    assert.ok(stats.count >= 2);
  });

  it('bad input gets a clear answer', async () => {
    const r = await gw.cli(['quarantine', 'list', '--reason', 'nonsense']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /reason must be one of attachment_stripped/);
    const u = await gw.cli(['quarantine', 'release']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /usage: portcullis quarantine release ID/);
  });
});

describe('retention through the running gateway: oldest dropped first, logged, mail flows on', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice'),
      config: { quarantine: { max_messages: 2 }, policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } } },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('three stripped messages with max_messages 2: the first is dropped (quarantine_dropped), all three delivered', async () => {
    const subjects: string[] = [];
    for (let k = 0; k < 3; k++) {
      const subject = marker(`qret${k}`);
      subjects.push(subject);
      assert.match(await send(gw, [USERS.alice.address], await message(subject, [{ filename: 'x.scr', content: fakePe(1500) }])), /^250 /);
      await gw.waitForMail(USERS.alice.address, subject);
    }
    const items = await list(gw);
    assert.deepEqual(items.map((i) => i.subject), [subjects[2], subjects[1]], 'the two newest are kept');
    const dropped = await waitFor('quarantine_dropped', () => gw.logs.find((l) => l.event === 'quarantine_dropped'));
    assert.equal(dropped.cause, 'max_messages');
    assert.equal(dropped.reason, 'attachment_stripped');
  });

  it('a quarantine that cannot be written never loses mail: the rewritten copy delivered, the band to Junk, quarantine_failed logged', async () => {
    const tmp = path.join(gw.dataDir, 'quarantine', 'tmp');
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.writeFileSync(tmp, 'not a directory');
    try {
      const stripped = marker('qfail');
      assert.match(await send(gw, [USERS.alice.address], await message(stripped, [{ filename: 'x.scr', content: fakePe(1500) }])), /^250 /);
      const mail = await gw.waitForMail(USERS.alice.address, stripped);
      assert.match(mail.toString('latin1'), /An attachment was removed/);
      assert.ok(!mail.includes('X-Portcullis-Quarantine'), 'no entry to name');
      const band = marker('qfailband');
      assert.match(await send(gw, [USERS.alice.address], await message(band, [], `x\n${GTUBE_STRING}\n`)), /^250 /);
      const junk = path.join(gw.mailboxDir(USERS.alice.address), '.Junk', 'new');
      await waitFor('the band message in Junk', () => fs.existsSync(junk) && fs.readdirSync(junk).some((f) => fs.readFileSync(path.join(junk, f)).includes(band)));
      const failures = gw.logs.filter((l) => l.event === 'quarantine_failed');
      assert.deepEqual(failures.map((l) => l.reason), ['attachment_stripped', 'policy_band']);
      const line = gw.logs.find((l) => l.event === 'message' && (l.symbols as Array<{ name: string }>).some((x) => x.name === 'GTUBE'));
      assert.equal(line?.action, 'junk');
    } finally {
      fs.rmSync(tmp, { force: true });
      fs.mkdirSync(tmp, { mode: 0o700 });
    }
  });
});

describe('digests through the running gateway: in the user\'s Maildir, links that verify once', { timeout: 120_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice', 'bob'),
      config: {
        policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } },
        quarantine: { digest: { enabled: true, base_url: 'https://console.example.test:8443/' } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('a held message → a digest for its recipient only, with release and allow links; a link is spent once; no digest when nothing new', async () => {
    const subject = marker('qdig');
    const raw = await message(subject, [], `Hi,\n${GTUBE_STRING}\n`);
    assert.match(await send(gw, [USERS.alice.address], raw), /^250 /);
    const [item] = await list(gw, '--search', subject);
    assert.ok(item);
    assert.match((await gw.cliOk(['quarantine', 'digest'])).stdout, /sent 1 digest/);
    const digest = await gw.waitForMail(USERS.alice.address, 'X-Portcullis-Digest');
    assert.ok(!gw.readMailbox(USERS.bob.address).some((m) => m.content.includes('X-Portcullis-Digest')), 'bob has nothing held: no digest');
    const parsed = await PostalMime.parse(digest);
    assert.match(parsed.subject ?? '', /^Quarantine: 1 message held for you$/);
    assert.equal(parsed.headers.find((h) => h.key === 'auto-submitted')?.value, 'auto-generated');
    const text = parsed.text ?? '';
    assert.ok(text.includes(subject), text);
    const urls = [...text.matchAll(/https:\/\/console\.example\.test:8443\/q\/link\?token=(\S+)/g)].map((m) => decodeURIComponent(m[1]!));
    assert.equal(urls.length, 2, text);

    const store = SqliteStore.open(path.join(gw.dataDir, 'state.db'), { purgeIntervalMs: 0 });
    try {
      const links = createLinks({ dataDir: gw.dataDir, store });
      const claims = await Promise.all(urls.map((u) => links.verifyLink(u)));
      assert.deepEqual(claims.map((c) => [c.id, c.recipient, c.action]), [[item.id, USERS.alice.address, 'release'], [item.id, USERS.alice.address, 'allow_sender']]);
      assert.ok(claims.every((c) => c.expiresAt > Date.now() + 6 * 86_400_000), 'valid for link_ttl (7 days)');
      await links.consumeLink(urls[0]!);
      await assert.rejects(links.consumeLink(urls[0]!), (e) => e instanceof LinkError && e.code === 'REUSED');
      await assert.rejects(links.consumeLink(urls[1]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))), (e) => e instanceof LinkError && e.code === 'ALTERED');
    } finally {
      await store.close();
    }
    assert.match((await gw.cliOk(['quarantine', 'digest'])).stdout, /sent 0 digest/, 'nothing new since the last digest');
  });

  it('digests need base_url: a config error names the key', async () => {
    const file = path.join(gw.tmpDir, 'bad.yaml');
    fs.writeFileSync(file, 'quarantine:\n  digest:\n    enabled: true\n');
    const bad = await gw.cli(['config', 'check', file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr + bad.stdout, /quarantine\.digest\.base_url/);
  });
});

describe('release of a relayed recipient goes through the queue to the next hop', { timeout: 120_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  before(async () => {
    sink = await Sink.start();
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        relay: { domains: [{ domain: 'relay.test' }], routes: [{ domain: 'relay.test', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] },
        policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
  });

  it('held for a relay domain: nothing relayed; released: queued, and the next hop gets the original byte for byte', async () => {
    const subject = marker('qrelay');
    const raw = await message(subject, [], `x\n${GTUBE_STRING}\n`);
    assert.match(await send(gw, ['someone@relay.test', USERS.alice.address], raw), /^250 /);
    const [item] = await list(gw, '--search', subject);
    assert.ok(item);
    assert.deepEqual(item.recipients.map((r) => r.address).sort(), [USERS.alice.address, 'someone@relay.test']);
    await sleep(500);
    assert.ok(!sink.messages.some((m) => m.raw.includes(subject)), 'held: not relayed');
    const rel = JSON.parse((await gw.cliOk(['quarantine', 'release', item.id, '--recipient', 'someone@relay.test', '--json'])).stdout) as { recipients: Array<{ address: string; status: string; reply: string }> };
    assert.deepEqual(rel.recipients.map((r) => [r.address, r.status]), [['someone@relay.test', 'queued']]);
    const got = await sink.waitFor(subject);
    assert.deepEqual(got.rcptTo, ['someone@relay.test']);
    assert.equal(got.mailFrom, EXT_SENDER);
    assert.ok(got.raw.equals(raw), 'the next hop got the original, byte-identical');
    assert.ok(!gw.readMailbox(USERS.alice.address).some((m) => m.content.includes(subject)), 'alice\'s copy is still held');
  });
});
