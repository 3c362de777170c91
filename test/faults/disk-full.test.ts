// Disk full and out of inodes, for real: the gateway's queue and its Maildirs each live on a
// small tmpfs mounted by the test, which fills it with files of its own. What must hold:
// - the queue file system full (space or inodes) → MAIL gets 452 4.3.1 "Insufficient system
//   storage" (Postfix's words), before the client sends anything;
// - it fills up after MAIL, during DATA → 452 4.3.1 at the end of data, never a "250" for a
//   message that could not be written, and nothing half-written left (journal segments parse to
//   their last byte, queue/large/ holds no file);
// - space returns → the client's retry of the same message is accepted and delivered, once;
// - the Maildir full → the accepted message stays queued (deferred, retried), nothing left in
//   tmp/ or new/, and it is delivered once space returns.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSegment } from '../../src/queue/journal.js';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { prepareGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { SmtpClient, dataBlock, transaction } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { mountTmpfs, needTmpfs, type Tmpfs } from './tmpfs.js';

const ALICE = USERS.alice.address;
/** Longer than the queue's statfs cache (src/queue/storage.ts, 500 ms). */
const RESTAT_MS = 700;

/** Every journal segment parses to its last byte; queue/large/ holds only `allowed` files. */
function assertNothingHalfWritten(queueDir: string, context: string): void {
  for (const name of fs.readdirSync(queueDir).filter((n) => /^seg-\d{10}\.log$/.test(n))) {
    const buf = fs.readFileSync(path.join(queueDir, name));
    const { goodLength } = parseSegment(buf, Number(name.slice(4, 14)));
    assert.equal(goodLength, buf.length, `${name}: ${buf.length - goodLength} bytes after the last whole record (${context})`);
  }
  const large = fs.readdirSync(path.join(queueDir, 'large'));
  assert.deepEqual(large, [], `queue/large/ should be empty (${context})`);
}

function copiesOf(gw: Gateway, address: string, token: string): number {
  return gw.readMailbox(address).filter((m) => m.content.includes(token)).length;
}

/** A message whose body is about `bodyBytes` long, with the token in its subject and body. */
function message(token: string, bodyBytes = 0): string {
  const line = `${token} filler line to make the message larger than the spill threshold\r\n`;
  const body = `Hello,\r\n${token}\r\n${bodyBytes ? line.repeat(Math.ceil(bodyBytes / line.length)) : ''}`;
  return makeMessage({ from: EXT_SENDER, to: ALICE, subject: token, body });
}

async function send(gw: Gateway, msg: string) {
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.ehlo('client.example.net');
  const r = await transaction(c, EXT_SENDER, [ALICE], msg);
  await c.quit().catch(() => undefined);
  return { ...r, transcript: c.describe() };
}

/** MAIL, RCPT and DATA pass; `fault` strikes after the 354; the end of data must get 452 4.3.1. */
async function refusedInData(gw: Gateway, msg: string, fault: () => void): Promise<void> {
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.ehlo('client.example.net');
  assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
  assertReply(await c.cmd(`RCPT TO:<${ALICE}>`), 250, undefined, c.describe());
  assertReply(await c.cmd('DATA'), 354, undefined, c.describe());
  fault();
  c.write(dataBlock(msg));
  assertReply(await c.readReply(30_000), 452, '4.3.1', c.describe());
  await c.quit().catch(() => undefined);
  await sleep(300); // the spill file of a refused message is removed asynchronously
}

describe('disk full and out of inodes under the queue and the Maildirs', { timeout: 240_000 }, () => {
  let gw: Gateway | undefined;
  let queueFs: Tmpfs | undefined;
  let mailFs: Tmpfs | undefined;
  let queueDir = '';
  /** Each test starts with both file systems emptied of filler (a failed test may have left some). */
  const freeAll = () => {
    queueFs?.free();
    mailFs?.free();
  };

  before(async (t) => {
    if (!(await needTmpfs(t as never))) return;
    gw = await prepareGateway({
      users: userMap('alice'),
      config: {
        // 1.5 × 256 KiB must be free for MAIL to pass (Postfix's rule): the tmpfs has 2 MiB.
        smtp: { max_message_size: '256KiB' },
        queue: { retry_initial: '1s', retry_max: '2s', memory_spill: '16KiB', segment_size: '128KiB', min_free_inodes: 8 },
      },
    });
    queueDir = path.join(gw.dataDir, 'queue');
    queueFs = await mountTmpfs(queueDir, '2m', 64);
    mailFs = await mountTmpfs(path.join(gw.dataDir, 'mail'), '1m', 256);
    await gw.start();
  });
  after(async () => {
    await gw?.stop().catch(() => undefined);
    await queueFs?.unmount();
    await mailFs?.unmount();
    await gw?.cleanup();
  });

  it('queue file system full: MAIL gets 452 4.3.1; once space returns the retry is delivered', async (t) => {
    if (!gw) return t.skip('no tmpfs');
    freeAll();
    queueFs!.fillSpace();
    assert.ok(queueFs!.freeBytes() < 384 * 1024, `filled: ${queueFs!.freeBytes()} bytes still free`);
    await sleep(RESTAT_MS);
    const token = marker('full-at-mail');
    const refused = await send(gw, message(token));
    assertReply(refused.mail, 452, '4.3.1', refused.transcript);
    assert.match(refused.mail.text, /Insufficient system storage/);
    assert.equal(refused.final, undefined, 'no DATA after a refused MAIL');
    const logged = await waitFor('insufficient_storage log line', () => gw!.logs.find((l) => l.event === 'insufficient_storage'));
    assert.match(String(logged.reason), /bytes free/);

    queueFs!.free();
    await sleep(RESTAT_MS);
    const retry = await send(gw, message(token));
    assertReply(retry.final!, 250, '2.0.0', retry.transcript);
    await gw.waitForMail(ALICE, token);
    await sleep(300);
    assert.equal(copiesOf(gw, ALICE, token), 1);
    assert.ok(gw.running, 'the gateway is still running');
  });

  for (const variant of [
    { name: 'a small message (journal append)', body: 0 },
    { name: 'a large message (spilled to queue/large/)', body: 120_000 },
  ]) {
    it(`disk fills during DATA, ${variant.name}: 452 4.3.1 at end of data, nothing half-written, the retry is delivered once`, async (t) => {
      if (!gw) return t.skip('no tmpfs');
      freeAll();
      await sleep(RESTAT_MS);
      const token = marker('full-in-data');
      const msg = message(token, variant.body);
      // The disk fills between MAIL's check and the write.
      await refusedInData(gw, msg, () => queueFs!.fillSpace());
      assertNothingHalfWritten(queueDir, variant.name);
      assert.ok(gw.logs.some((l) => (l.event === 'queue_write_failed' || l.event === 'spool_error') && /ENOSPC|no space/i.test(String(l.err))),
        'the write failure is logged with its cause');

      queueFs!.free();
      await sleep(RESTAT_MS);
      const retry = await send(gw, msg);
      assertReply(retry.final!, 250, '2.0.0', retry.transcript);
      await gw.waitForMail(ALICE, token);
      await sleep(300);
      assert.equal(copiesOf(gw, ALICE, token), 1, 'delivered once: the refused attempt left nothing to deliver');
      assertNothingHalfWritten(queueDir, 'after the retry was delivered');
    });
  }

  it('out of inodes: MAIL gets 452 4.3.1; inodes running out during DATA leave no file; the retry is delivered', async (t) => {
    if (!gw) return t.skip('no tmpfs');
    freeAll();
    queueFs!.fillInodes();
    assert.equal(queueFs!.freeInodes(), 0);
    await sleep(RESTAT_MS);
    const token = marker('inodes');
    const big = message(token, 60_000);
    const refused = await send(gw, big);
    assertReply(refused.mail, 452, '4.3.1', refused.transcript);
    assert.ok(gw.logs.some((l) => l.event === 'insufficient_storage' && /inodes free/.test(String(l.reason))), 'the inode shortage is named in the log');
    queueFs!.free();
    await sleep(RESTAT_MS);

    // The check passes at MAIL, then the last inode goes: the spill file cannot be created.
    await refusedInData(gw, big, () => queueFs!.fillInodes());
    assertNothingHalfWritten(queueDir, 'inodes ran out during DATA');

    queueFs!.free();
    await sleep(RESTAT_MS);
    const retry = await send(gw, big);
    assertReply(retry.final!, 250, '2.0.0', retry.transcript);
    await gw.waitForMail(ALICE, token);
    await sleep(300);
    assert.equal(copiesOf(gw, ALICE, token), 1);
  });

  it('restarted while the queue has no inode left: the gateway comes up, refuses with 452 4.3.1, and takes mail once there is room', async (t) => {
    if (!gw) return t.skip('no tmpfs');
    freeAll();
    await gw.stop();
    queueFs!.fillInodes();
    await gw.start();
    await sleep(RESTAT_MS);
    const token = marker('restart-full');
    const refused = await send(gw, message(token));
    assertReply(refused.mail, 452, '4.3.1', refused.transcript);
    queueFs!.free();
    await sleep(RESTAT_MS);
    const retry = await send(gw, message(token));
    assertReply(retry.final!, 250, '2.0.0', retry.transcript);
    await gw.waitForMail(ALICE, token);
    assertNothingHalfWritten(queueDir, 'after a start on a full file system');
  });

  it('Maildir full: the accepted message stays queued (deferred), nothing in tmp/ or new/, delivered when space returns', async (t) => {
    if (!gw) return t.skip('no tmpfs');
    freeAll();
    const token = marker('maildir-full');
    const before = gw.readMailbox(ALICE).length;
    mailFs!.fillSpace();
    const r = await send(gw, message(token, 4_000));
    assertReply(r.final!, 250, '2.0.0', r.transcript);
    // Deferred twice at least: retried, still queued, nothing lost.
    const entry = await waitFor('the message deferred twice for want of space', async () => {
      const list = await gw!.queueList();
      const e = list.find((m) => m.recipients.some((x) => x.address === ALICE));
      const rc = e?.recipients.find((x) => x.address === ALICE);
      return rc && rc.status === 'deferred' && rc.attempts >= 2 ? rc : undefined;
    }, { timeoutMs: 30_000, intervalMs: 300, details: () => gw!.tail(20) });
    assert.match(String(entry.last_reply), /ENOSPC|no space left/i);
    assert.equal(gw.readMailbox(ALICE).length, before, 'nothing new in new/ or cur/');
    const tmp = path.join(gw.mailboxDir(ALICE), 'tmp');
    assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], 'no half-written file in tmp/');

    mailFs!.free();
    await gw.waitForMail(ALICE, token, 30_000);
    await waitFor('the queue to drain', async () => (await gw!.queueList()).length === 0, { timeoutMs: 15_000, intervalMs: 300 });
    assert.equal(copiesOf(gw, ALICE, token), 1);
    assert.ok(gw.running, 'the gateway is still running');
  });
});
