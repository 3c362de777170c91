// SPF over real SMTP and real DNS (a dns2 server on loopback): every result behaves per policy and
// shows in Received-SPF, Authentication-Results and X-Spam-Status; `portcullis check-spf` agrees.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertReply, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { dataBlock, SmtpClient } from '../helpers/smtp-client.js';
import { waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';

const ZONE = {
  'pass.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:127.0.0.0/8 -all' }],
  'fail.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:192.0.2.0/24 -all exp=why.fail.test' }],
  'why.fail.test': [{ type: 'TXT' as const, data: '%{i} is not one of %{d}\'s mail servers' }],
  'softfail.test': [{ type: 'TXT' as const, data: 'v=spf1 ~all' }],
  'neutral.test': [{ type: 'TXT' as const, data: 'v=spf1 ?all' }],
  'none.test': [{ type: 'A' as const, data: '192.0.2.1' }],
  'temperror.test': [{ type: 'TIMEOUT' as const }],
  'permerror.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:127.0.0.1 foo:bar -all' }],
};

/** One transaction from 127.0.0.1; returns the RCPT reply and, when accepted, the delivered message. */
async function attempt(gw: Gateway, sender: string): Promise<{ rcpt: number; text: string; mail?: string; folder?: string }> {
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.ehlo('client.pass.test');
  assertReply(await c.cmd(`MAIL FROM:<${sender}>`), 250, undefined, c.describe());
  const rcpt = await c.cmd(`RCPT TO:<${USERS.alice.address}>`);
  if (rcpt.code !== 250) {
    await c.quit();
    return { rcpt: rcpt.code, text: rcpt.text };
  }
  const subject = marker('spf');
  assertReply(await c.cmd('DATA'), 354);
  c.write(dataBlock(makeMessage({ from: sender, to: USERS.alice.address, subject })));
  assertReply(await c.readReply(), 250, '2.0.0', c.describe());
  await c.quit();
  // INBOX or Junk: where it lands depends on the whole score, not only on SPF.
  const stored = await waitFor(`a message containing ${subject}`, () => gw.allMailboxFiles().find((m) => m.content.includes(subject)), { timeoutMs: 15_000 });
  return { rcpt: 250, text: rcpt.text, mail: stored.content.toString(), folder: /[/\\]\.Junk[/\\]/.test(stored.file) ? 'Junk' : 'INBOX' };
}

const header = (mail: string, name: string) => new RegExp(`^${name}: ([^\\r\\n]*(?:\\r?\\n[ \\t][^\\r\\n]*)*)`, 'mi').exec(mail)?.[1]?.replace(/\r?\n[ \t]+/g, ' ');

describe('SPF over real SMTP and real DNS', { timeout: 180_000 }, () => {
  let dns: DnsServer;
  let gw: Gateway;
  let scoring: Gateway;
  before(async () => {
    dns = await startDnsServer(ZONE);
    const common = { dns: { servers: [dns.server], timeout: '300ms', attempts: 1 } };
    gw = await startGateway({ users: userMap('alice'), config: common });
    scoring = await startGateway({ users: userMap('alice'), config: { ...common, spf: { fail_action: 'score' } } });
  });
  after(async () => {
    await gw?.cleanup();
    await scoring?.cleanup();
    await dns?.close();
  });

  it('pass: delivered with Received-SPF: pass and spf=pass in Authentication-Results', async () => {
    const r = await attempt(gw, 'someone@pass.test');
    assert.equal(r.rcpt, 250);
    assert.match(header(r.mail!, 'Received-SPF')!, /^pass \(.*\) client-ip=127\.0\.0\.1; envelope-from="?someone@pass\.test"?;/);
    assert.match(header(r.mail!, 'Authentication-Results')!, /spf=pass smtp\.mailfrom=pass\.test/);
  });

  it('fail: every RCPT refused with 550 5.7.23 and the domain\'s explanation; postmaster stays reachable', async () => {
    const r = await attempt(gw, 'someone@fail.test');
    assert.equal(r.rcpt, 550);
    assert.match(r.text, /^5\.7\.23 /);
    assert.match(r.text, /SPF check failed for <someone@fail\.test> from 127\.0\.0\.1: 127\.0\.0\.1 is not one of fail\.test's mail servers/);
    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo('client.pass.test');
    assertReply(await c.cmd('MAIL FROM:<someone@fail.test>'), 250);
    assertReply(await c.cmd('RCPT TO:<postmaster@example.test>'), 250);
    await c.quit();
  });

  it('fail with spf.fail_action: score: delivered, scored SPF_FAIL (to Junk with the other signs), Received-SPF: fail', async () => {
    const r = await attempt(scoring, 'someone@fail.test');
    assert.equal(r.rcpt, 250);
    // SPF_FAIL 5 + no PTR 1.5 + HELO that does not resolve 1 = 7.5: past the junk threshold (6).
    assert.equal(r.folder, 'Junk');
    assert.match(header(r.mail!, 'Received-SPF')!, /^fail /);
    assert.match(header(r.mail!, 'X-Spam-Status')!, /tests=.*SPF_FAIL=5/);
    assert.match(header(r.mail!, 'Authentication-Results')!, /spf=fail smtp\.mailfrom=fail\.test/);
  });

  for (const [result, symbol, score] of [
    ['softfail', 'SPF_SOFTFAIL', 2], ['neutral', 'SPF_NEUTRAL', 0.5], ['none', 'SPF_NONE', 0.5],
    ['temperror', 'SPF_TEMPERROR', 0], ['permerror', 'SPF_PERMERROR', 0.5],
  ] as const) {
    it(`${result}: delivered, scored ${symbol} (${score}), shown in Received-SPF and Authentication-Results`, async () => {
      const r = await attempt(gw, `someone@${result}.test`);
      assert.equal(r.rcpt, 250, r.text);
      assert.match(header(r.mail!, 'Received-SPF')!, new RegExp(`^${result}\\b`));
      assert.match(header(r.mail!, 'Authentication-Results')!, new RegExp(`spf=${result} smtp\\.mailfrom=${result}\\.test`));
      if (score) assert.match(header(r.mail!, 'X-Spam-Status')!, new RegExp(`tests=.*${symbol}=${score}`));
    });
  }

  it('`portcullis check-spf` explains the same results (exit 1 for a refused fail, 0 otherwise)', async () => {
    const fail = await gw.cli(['check-spf', '127.0.0.1', 'someone@fail.test', 'client.pass.test']);
    assert.equal(fail.code, 1, fail.stdout + fail.stderr);
    assert.match(fail.stdout, /fail/);
    assert.match(fail.stdout, /550 5\.7\.23/);
    const pass = await gw.cli(['check-spf', '127.0.0.1', 'someone@pass.test', 'client.pass.test', '--json']);
    assert.equal(pass.code, 0, pass.stdout + pass.stderr);
    const json = JSON.parse(pass.stdout) as { identities: Array<{ identity: string; result: string }> };
    assert.equal(json.identities.find((i) => i.identity === 'mailfrom')?.result, 'pass');
  });
});
