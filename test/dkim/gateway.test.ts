// DKIM, DMARC and ARC through the running gateway (`portcullis serve`), with a real client
// (nodemailer) and real DNS (a dns2 server on loopback holding the keys and the policies).
// Messages are signed with mailauth's signer; the verdict is read where a user would see it:
// the SMTP reply, the Authentication-Results header of the delivered file, and the folder.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { mailer, sendRaw, type SendOutcome } from '../helpers/clients.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { waitFor } from '../helpers/wait.js';
import { keyRecord, sign } from './support.js';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const txt = (data: string) => [{ type: 'TXT' as const, data }];

const ZONE = {
  // The envelope sender's domain: SPF passes for 127.0.0.1, but it is not the From domain.
  'pass.test': txt('v=spf1 ip4:127.0.0.0/8 -all'),
  'signed.test': txt('v=spf1 -all'),
  'sel._domainkey.signed.test': txt(keyRecord(PEM)),
  '_dmarc.signed.test': txt('v=DMARC1; p=reject'),
  '_dmarc.reject.test': txt('v=DMARC1; p=reject; rua=mailto:dmarc@reject.test'),
  '_dmarc.quarantine.test': txt('v=DMARC1; p=quarantine'),
  'sel._domainkey.relaxed.test': txt(keyRecord(PEM)),
  '_dmarc.relaxed.test': txt('v=DMARC1; p=none'),
};

const header = (mail: string, name: string) => new RegExp(`^${name}: ([^\\r\\n]*(?:\\r?\\n[ \\t][^\\r\\n]*)*)`, 'mi').exec(mail)?.[1]?.replace(/\r?\n[ \t]+/g, ' ');

function send(gw: Gateway, envelopeFrom: string, raw: Buffer): Promise<SendOutcome> {
  return sendRaw(gw.ports.mx, { from: envelopeFrom, to: [USERS.alice.address] }, raw);
}

function message(from: string, subject: string, body?: string): Buffer {
  return Buffer.from(makeMessage({ from, to: USERS.alice.address, subject, body }), 'utf8');
}

describe('DKIM, DMARC and ARC through the running gateway', { timeout: 180_000 }, () => {
  let dns: DnsServer;
  let gw: Gateway;
  before(async () => {
    dns = await startDnsServer(ZONE);
    gw = await startGateway({ users: userMap('alice'), config: { dns: { servers: [dns.server], timeout: '2s', attempts: 2 } } });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  it('a valid aligned signature: delivered with dkim=pass (d, s, b) and dmarc=pass in Authentication-Results', async () => {
    const subject = marker('dkim-pass');
    const raw = await sign(message('news@signed.test', subject), { domain: 'signed.test', selector: 'sel', privateKey: PEM });
    const r = await send(gw, 'bounce@pass.test', raw);
    assert.ok(r.ok, JSON.stringify(r));
    const mail = (await gw.waitForMail(USERS.alice.address, subject)).toString();
    const ar = header(mail, 'Authentication-Results')!;
    assert.match(ar, /^mx\.example\.test;/);
    assert.match(ar, /dkim=pass header\.d=signed\.test header\.s=sel header\.b="?[A-Za-z0-9+/]{8}"?/);
    assert.match(ar, /dmarc=pass \(p=reject dis=none\) header\.from=signed\.test/);
    assert.match(ar, /spf=pass smtp\.mailfrom=pass\.test/);
    assert.match(ar, /arc=none/);
  });

  it('a forged From of a p=reject domain: 550 5.7.1 at the end of DATA naming the domain and the policy; nothing delivered', async () => {
    const subject = marker('dmarc-reject');
    const r = await send(gw, 'bounce@pass.test', message('ceo@reject.test', subject));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.code === 550, JSON.stringify(r));
    assert.match(!r.ok ? r.text : '', /5\.7\.1 .*DMARC policy of reject\.test \(p=reject\)/);
    assert.equal(gw.allMailboxFiles().filter((m) => m.content.includes(subject)).length, 0);
    // The log line follows the reply: wait for it.
    await waitFor('the refusal logged with its DMARC_REJECT symbol',
      () => gw.logs.find((l) => l.event === 'message' && l.action === 'reject' && JSON.stringify(l).includes('DMARC_REJECT')),
      { timeoutMs: 5000, details: () => JSON.stringify(gw.logs.filter((l) => l.event === 'message').slice(-3)) });
  });

  it('a forged From of a p=quarantine domain: delivered to Junk with dmarc=fail (p=quarantine dis=quarantine)', async () => {
    const subject = marker('dmarc-quarantine');
    const r = await send(gw, 'bounce@pass.test', message('ceo@quarantine.test', subject));
    assert.ok(r.ok, JSON.stringify(r));
    const found = await waitForFile(gw, subject);
    assert.match(found.file, /[/\\]\.Junk[/\\]/, `delivered to ${found.file}`);
    assert.match(header(found.content.toString(), 'Authentication-Results')!, /dmarc=fail \(p=quarantine dis=quarantine\) header\.from=quarantine\.test/);
  });

  it('a broken signature (body changed after signing): delivered (p=none) with dkim=fail naming the body hash', async () => {
    const subject = marker('dkim-broken');
    const raw = await sign(message('news@relaxed.test', subject), { domain: 'relaxed.test', selector: 'sel', privateKey: PEM });
    const r = await send(gw, 'bounce@pass.test', Buffer.concat([raw, Buffer.from('Appended by someone else.\r\n')]));
    assert.ok(r.ok, JSON.stringify(r));
    const mail = (await gw.waitForMail(USERS.alice.address, subject)).toString();
    const ar = header(mail, 'Authentication-Results')!;
    assert.match(ar, /dkim=fail \(body hash did not verify[^)]*\) header\.d=relaxed\.test header\.s=sel/);
    assert.match(ar, /dmarc=fail \(p=none dis=none\) header\.from=relaxed\.test/);
    assert.match(header(mail, 'X-Spam-Status')!, /DKIM_INVALID|tests=/);
  });

  it('an Authentication-Results header claiming our name is removed, not trusted', async () => {
    const subject = marker('ar-forged');
    const raw = Buffer.concat([Buffer.from('Authentication-Results: mx.example.test; dkim=pass header.d=reject.test; dmarc=pass\r\n'), message('ceo@relaxed.test', subject)]);
    const r = await send(gw, 'bounce@pass.test', raw);
    assert.ok(r.ok, JSON.stringify(r));
    const mail = (await gw.waitForMail(USERS.alice.address, subject)).toString();
    assert.doesNotMatch(mail, /header\.d=reject\.test/);
    assert.match(header(mail, 'Authentication-Results')!, /dkim=none/);
  });

  it('authenticated submission is not checked: no dkim/dmarc entries, never refused for DMARC', async () => {
    const subject = marker('submission');
    const transport = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: USERS.alice.address, pass: USERS.alice.password } });
    try {
      await transport.sendMail({ envelope: { from: USERS.alice.address, to: [USERS.alice.address] }, raw: message(USERS.alice.address, subject) });
    } finally {
      transport.close();
    }
    const mail = (await gw.waitForMail(USERS.alice.address, subject)).toString();
    assert.doesNotMatch(header(mail, 'Authentication-Results')!, /dkim=|dmarc=/);
  });
});

async function waitForFile(gw: Gateway, needle: string, timeoutMs = 15_000): Promise<{ file: string; content: Buffer }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = gw.allMailboxFiles().find((m) => m.content.includes(needle));
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no delivered file contains ${needle}\n${gw.tail(20)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
