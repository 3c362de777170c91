// The outbound content policy end to end: an authenticated user's mail passes the same content
// checks as inbound mail. EICAR (real clamd) is refused at DATA with 554 5.7.1 naming the
// signature, as inbound; mail that scores as spam (an operator rule from a .cf file) is accepted
// and HELD, never sent. GTUBE is a score (1000), not a demand: from an authenticated user it is
// held too, which makes it the way to try the outbound hold end to end (docs/outbound.md).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { USERS, userMap } from '../helpers/fixtures.js';
import { Sink } from '../helpers/sink.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { EICAR, EICAR_SIGNATURE, needClamd, startClamd, type Clamd } from '../helpers/clamd.js';
import { GTUBE_STRING } from '../../src/checks/gtube/gtube.js';

type Outcome = { ok: true; response: string } | { ok: false; code: number; text: string };

describe('outbound content policy for authenticated users', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let clamd: Clamd | undefined;
  let tmp: string;

  before(async (t) => {
    if (!needClamd(t as never)) return;
    clamd = await startClamd();
    sink = await Sink.start();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'outbound-content-'));
    fs.writeFileSync(path.join(tmp, 'local.cf'), [
      'body     LOCAL_OUTBOUND_SPAM  /\\bcheap-replica-watches\\b/i',
      'describe LOCAL_OUTBOUND_SPAM  A phrase only spam uses',
      'score    LOCAL_OUTBOUND_SPAM  9.0',
      '',
    ].join('\n'));
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        antivirus: { enabled: true, clamd: clamd.socket },
        rules: { local_paths: [path.join(tmp, 'local.cf')] },
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await clamd?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function send(body: string | Buffer, tag: string, attachments: { filename: string; content: Buffer }[] = []): Promise<Outcome & { marker: string }> {
    const m = marker(tag);
    const a = USERS.alice;
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: gw.ports.submission, secure: false, requireTLS: true,
      auth: { user: a.address, pass: a.password }, tls: { rejectUnauthorized: false }, name: 'laptop.example.net',
    });
    try {
      const info = await transport.sendMail({ from: a.address, to: 'friend@far.test', subject: m, text: `${m}\n${body}`, attachments });
      return { ok: true, response: info.response, marker: m };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string };
      return { ok: false, code: e.responseCode ?? 0, text: e.response ?? String(err), marker: m };
    } finally {
      transport.close();
    }
  }
  const atSink = (m: string) => sink.messages.filter((x) => x.raw.includes(m)).length;

  it('EICAR from an authenticated user is refused at DATA with 554 5.7.1 naming the signature', async (t) => {
    if (!needClamd(t)) return;
    const r = await send('see attachment', 'eicar', [{ filename: 'eicar.com', content: EICAR }]);
    assert.equal(r.ok, false);
    assert.equal((r as { code: number }).code, 554, JSON.stringify(r));
    assert.match((r as { text: string }).text, /^554 5\.7\.1 /);
    assert.ok((r as { text: string }).text.includes(EICAR_SIGNATURE), 'the reply names the signature');
    assert.equal((await gw.queueList()).length, 0, 'nothing stored');
  });

  let gtubeId = '';
  it('GTUBE from an authenticated user is held (its score of 1000 is a spam score), not refused', async (t) => {
    if (!needClamd(t)) return;
    const r = await send(GTUBE_STRING, 'gtube');
    assert.ok(r.ok, JSON.stringify(r));
    gtubeId = /queued as (\S+)/.exec(r.response)?.[1] ?? '';
    const m = (await gw.queueList()).find((q) => q.id === gtubeId) as { state?: string; held?: { reason: string } } | undefined;
    assert.equal(m?.state, 'held');
    assert.equal(m?.held?.reason, 'spam score 1000 (hold at 6)');
  });

  it('spam by score from an authenticated user is accepted and held, not sent and not refused', async (t) => {
    if (!needClamd(t)) return;
    const ham = await send('Minutes of the meeting are attached.', 'ham');
    assert.ok(ham.ok, JSON.stringify(ham));
    await waitFor('the ordinary message at the sink', () => atSink(ham.marker) === 1 || undefined);
    const spam = await send('Buy cheap-replica-watches today, best prices!', 'spam');
    assert.ok(spam.ok, `accepted: ${JSON.stringify(spam)}`);
    assert.match(spam.response, /^250 /);
    const queued = await gw.queueList();
    const held = queued.filter((m) => (m as { state?: string }).state === 'held' && m.id !== gtubeId);
    assert.equal(held.length, 1, JSON.stringify(queued, null, 2));
    assert.match(String((held[0] as { held?: { reason: string } }).held?.reason), /^spam score \d+(\.\d+)? \(hold at 6\)$/);
    const logged = gw.logs.find((l) => l.event === 'outbound_held' && l.id === held[0]!.id);
    assert.equal(logged?.code, 'spam');
    assert.equal(gw.logs.filter((l) => l.event === 'account_locked').length, 0);
    await sleep(1500);
    assert.equal(atSink(spam.marker), 0, 'held mail is not sent');
    // One spam hold does not lock the account (spam_holds_per_day: 3).
    const after = await send('Agenda for tomorrow.', 'after');
    assert.ok(after.ok, JSON.stringify(after));
  });
});
