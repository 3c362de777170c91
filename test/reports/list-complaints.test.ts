// Complaints about list mail, end to end (docs/deliverability.md, docs/lists.md): a list post
// goes out through the running gateway to an smtp-server sink standing for the members'
// provider; the provider's ARF report (RFC 5965) about one member's copy comes back to abuse@
// over port 25. `portcullis complaints list --json` must name the list and the member, the
// member must be suppressed (no copy of the next post), and only the member's own confirmed
// subscription may bring it back. A forged report (not authenticated, without the member's
// unsubscribe token) is recorded but unsubscribes nobody.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { Sink, type SinkMessage } from '../helpers/sink.js';
import { mailer, sendRaw } from '../helpers/clients.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { arfReport } from '../helpers/report-fixtures.js';

const LIST = 'team@example.test';
const OWNER = USERS.alice.address;
const MEMBERS = ['bob@remote.example', 'carol@remote.example', 'dan@remote.example'];
let seq = 0;

interface ComplaintJson {
  id: number; user?: string; attributedBy?: string; list?: string; member?: string; listBy?: string; verified: boolean; reporterDomain: string; messageId?: string;
}

function message(o: { from: string; to: string; subject: string; body?: string }): string {
  return [`From: ${o.from}`, `To: ${o.to}`, `Subject: ${o.subject}`, `Message-ID: <lc${++seq}.${Date.now()}@test>`, `Date: ${new Date().toUTCString()}`, '', o.body ?? 'hello', ''].join('\r\n');
}

const subjectOf = (m: SinkMessage) => /^Subject: (.*)$/mi.exec(m.raw.toString('latin1').split('\r\n\r\n')[0]!)?.[1]?.trim() ?? '';

describe('complaints about list mail', { timeout: 240_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let dns: DnsServer;

  const sent = (to: string, since = 0) => sink.messages.slice(since).filter((m) => m.rcptTo.includes(to));
  const members = async () => JSON.parse((await gw.cliOk(['list', 'members', LIST, '--json'])).stdout) as { address: string; state: string }[];
  const stateOf = async (a: string) => (await members()).find((m) => m.address === a)?.state;
  const complaints = async () => JSON.parse((await gw.cliOk(['complaints', 'list', '--json'])).stdout) as ComplaintJson[];
  const send = async (from: string, to: string, subject: string, body?: string) => {
    const r = await sendRaw(gw.ports.mx, { from, to: [to] }, message({ from, to, subject, body }));
    assert.deepEqual(r, { ok: true }, `${from} → ${to}: ${JSON.stringify(r)}`);
  };
  async function subscribe(address: string): Promise<void> {
    const mark = sink.messages.length;
    await send(address, 'team-request@example.test', 'subscribe');
    const req = await waitFor(`the confirmation request for ${address}`, () => sent(address, mark).find((m) => /^confirm /.test(subjectOf(m))), { timeoutMs: 20_000, details: () => gw.tail(20) });
    await send(address, 'team-request@example.test', `Re: ${subjectOf(req)}`);
    await waitFor(`${address} confirmed`, async () => (await stateOf(address)) === 'confirmed', { timeoutMs: 20_000 });
  }
  /** The owner posts over authenticated submission; resolves with each member's copy. */
  async function post(subject: string, expected: readonly string[]): Promise<Map<string, SinkMessage>> {
    const mark = sink.messages.length;
    const t = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: OWNER, pass: USERS.alice.password } });
    try {
      await t.sendMail({ envelope: { from: OWNER, to: [LIST] }, raw: message({ from: OWNER, to: LIST, subject, body: 'news for the team' }) });
    } finally {
      t.close();
    }
    const copies = await waitFor(`"${subject}" at ${expected.join(', ')}`, () => {
      const got = sink.messages.slice(mark).filter((m) => subjectOf(m) === subject);
      return expected.every((a) => got.some((m) => m.rcptTo.includes(a))) && got;
    }, { timeoutMs: 20_000, details: () => gw.tail(20) });
    return new Map(copies.map((m) => [m.rcptTo[0]!, m]));
  }
  async function report(o: { from: string; envelope: string; original: Buffer | string; mailFrom?: string; rcptTo: string; headersOnly?: boolean; feedbackType?: string }): Promise<ComplaintJson> {
    const before = (await complaints()).length;
    const arf = arfReport({ from: o.from, to: 'abuse@example.test', original: o.original, rcptTo: o.rcptTo, sourceIp: '127.0.0.1', headersOnly: o.headersOnly, ...(o.feedbackType ? { feedbackType: o.feedbackType } : {}), ...(o.mailFrom ? { mailFrom: o.mailFrom } : {}) });
    assert.deepEqual(await sendRaw(gw.ports.mx, { from: o.envelope, to: ['abuse@example.test'] }, arf), { ok: true });
    const list = await waitFor('the complaint recorded', async () => {
      const l = await complaints();
      return l.length > before && l;
    }, { timeoutMs: 20_000, intervalMs: 300, details: () => gw.tail(20) });
    return list[0]!;
  }

  before(async () => {
    sink = await Sink.start();
    // isp.example authenticates its reports (SPF and a DMARC record); forger.example does not.
    dns = await startDnsServer({
      'remote.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }, { type: 'A', data: '127.0.0.1' }],
      '_dmarc.remote.example': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
      'isp.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
      '_dmarc.isp.example': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
    });
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [dns.server] },
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, tls: 'none' }] },
        lists: { web_url: 'https://lists.example.test', rate: { per_ip: 1000, per_address: 50 } },
        reports: { addresses: [] },
      },
    });
    await gw.cliOk(['list', 'create', LIST, 'description=Team', `owners=${OWNER}`]);
    for (const m of MEMBERS) await subscribe(m);
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
  });

  it('an ARF report about a member\'s copy names the list and the member, who gets no more posts', async () => {
    const copies = await post('Monday meeting', MEMBERS);
    const copy = copies.get('carol@remote.example')!;
    const c = await report({ from: 'fbl@isp.example', envelope: 'fbl-bounces@isp.example', original: copy.raw, mailFrom: copy.mailFrom, rcptTo: 'carol@remote.example' });
    assert.equal(c.list, LIST);
    assert.equal(c.member, 'carol@remote.example');
    assert.equal(c.listBy, 'unsubscribe-token', 'the copy carries carol\'s own one-click token');
    assert.equal(c.verified, true);
    assert.equal(c.reporterDomain, 'isp.example');
    assert.equal(c.user, undefined, 'the list sent it, not its author alice: her outbound complaint count is not touched');
    await waitFor('carol suppressed', async () => (await stateOf('carol@remote.example')) === 'suppressed', { timeoutMs: 20_000 });
    assert.ok(gw.logs.some((l) => l.event === 'list_member_suppressed' && l.member === 'carol@remote.example' && l.list === LIST), 'the suppression is logged');
    const text = (await gw.cliOk(['complaints', 'list'])).stdout;
    assert.match(text, new RegExp(`list ${LIST.replace(/[.]/g, '\\.')}, member carol@remote\\.example \\(by unsubscribe-token\\)`), text);
    const mark = sink.messages.length;
    await post('Tuesday meeting', ['bob@remote.example', 'dan@remote.example']);
    await sleep(500);
    assert.deepEqual(sent('carol@remote.example', mark), [], 'a suppressed member gets no copy');
  });

  it('a forged report naming a member\'s VERP address unsubscribes nobody; an authenticated one does', async () => {
    // Headers only, without the List-Unsubscribe token: only the return path names dan.
    const forged = [`From: ${OWNER}`, `To: ${LIST}`, 'Subject: Monday meeting', `List-Id: "Team" <team.example.test>`, 'Message-ID: <made-up@example.test>', '', 'x', ''].join('\r\n');
    const verp = 'team-bounces+dan=remote.example@example.test';
    const c = await report({ from: 'abuse@forger.example', envelope: 'abuse@forger.example', original: forged, mailFrom: verp, rcptTo: 'dan@remote.example', headersOnly: true });
    assert.deepEqual([c.list, c.member, c.listBy, c.verified], [LIST, 'dan@remote.example', 'verp', false]);
    await waitFor('the refusal to suppress logged', () => gw.logs.find((l) => l.event === 'list_complaint_unproven' && l.member === 'dan@remote.example'), { timeoutMs: 10_000 });
    assert.equal(await stateOf('dan@remote.example'), 'confirmed', 'an unauthenticated report without the token changes nothing');

    // The authenticated provider says dan marked it "not spam": no wish to leave, nothing changes.
    const ok = await report({ from: 'fbl@isp.example', envelope: 'fbl-bounces@isp.example', original: forged, mailFrom: verp, rcptTo: 'dan@remote.example', headersOnly: true, feedbackType: 'not-spam' });
    assert.deepEqual([ok.member, ok.verified], ['dan@remote.example', true]);
    await sleep(500);
    assert.equal(await stateOf('dan@remote.example'), 'confirmed', 'a not-spam report keeps the member');

    // The same from the authenticated provider, by Original-Rcpt-To and List-Id alone.
    const v = await report({ from: 'fbl@isp.example', envelope: 'fbl-bounces@isp.example', original: forged, mailFrom: 'redacted@isp.example', rcptTo: 'dan@remote.example', headersOnly: true });
    assert.deepEqual([v.list, v.member, v.listBy, v.verified], [LIST, 'dan@remote.example', 'rcpt-to', true]);
    await waitFor('dan suppressed', async () => (await stateOf('dan@remote.example')) === 'suppressed', { timeoutMs: 20_000 });
    assert.equal(gw.logs.filter((l) => l.event === 'list_member_suppressed' && l.member === 'dan@remote.example').length, 1, 'by the last report only');
  });

  it('a suppressed member is never invited again by the administrator; its own confirmed subscription brings it back', async () => {
    const mark = sink.messages.length;
    const r = await gw.cli(['list', 'subscribe', LIST, 'carol@remote.example']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /carol@remote\.example: skipped: suppressed after a complaint/);
    const gone = await gw.cliOk(['list', 'unsubscribe', LIST, 'carol@remote.example']);
    assert.match(gone.stdout, /removed 0 of 1/, 'the suppression stays on the roster');
    await sleep(500);
    assert.deepEqual(sent('carol@remote.example', mark), [], 'no confirmation request went to carol');
    assert.equal(await stateOf('carol@remote.example'), 'suppressed');
    await subscribe('carol@remote.example');
    await post('Wednesday meeting', ['bob@remote.example', 'carol@remote.example']);
  });
});
