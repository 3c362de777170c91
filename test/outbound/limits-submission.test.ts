// Outbound limits end to end: users log in on submission with nodemailer (a real client) and
// write to a remote domain (relayed to a capturing sink). Past the per-hour recipient limit the
// tripping message is accepted and held, the account is locked (451 with the reason at the next
// MAIL), its mail still in the queue is held too, postmaster@ gets exactly one alert, the metrics
// and the log say why, a restart keeps counts and locks, and `queue release --user` plus
// `user unlock` let the mail go. A login from a new network is counted.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { USERS, userMap } from '../helpers/fixtures.js';
import { Sink } from '../helpers/sink.js';
import { freePorts, sleep, waitFor } from '../helpers/wait.js';
import { makeMessage, marker } from '../helpers/messages.js';

type User = (typeof USERS)[keyof typeof USERS];
type Outcome = { ok: true; response: string } | { ok: false; code: number; text: string };

describe('outbound limits and locks over SMTP AUTH', { timeout: 240_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let metricsPort: number;

  before(async () => {
    sink = await Sink.start();
    [metricsPort] = (await freePorts(1)) as [number];
    gw = await startGateway({
      users: userMap('alice', 'bob', 'carol'),
      config: {
        metrics: { enabled: true, address: '127.0.0.1', port: metricsPort },
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] },
        queue: { retry_initial: '30s', retry_max: '60s' },
        outbound: { limits: { user: { recipients_per_hour: 5 } } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
  });

  /** One message over submission (STARTTLS + AUTH PLAIN), optionally from another loopback source address. */
  async function send(user: User, to: string[], tag: string, localAddress?: string): Promise<Outcome & { marker: string }> {
    const m = marker(tag);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port: gw.ports.submission, secure: false, requireTLS: true, localAddress,
      auth: { user: user.address, pass: user.password }, tls: { rejectUnauthorized: false }, name: 'laptop.example.net',
    });
    try {
      const info = await transport.sendMail({ envelope: { from: user.address, to }, raw: makeMessage({ from: user.address, to: to[0]!, subject: m, body: `${m}\n` }) });
      return { ok: true, response: info.response, marker: m };
    } catch (err) {
      const e = err as { responseCode?: number; response?: string };
      return { ok: false, code: e.responseCode ?? 0, text: e.response ?? String(err), marker: m };
    } finally {
      transport.close();
    }
  }

  const atSink = (m: string) => sink.messages.filter((x) => x.raw.includes(m));
  const alerts = () => gw.readMailbox('postmaster@example.test').filter((x) => x.content.includes('Subject: Outbound mail of'));
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

  it('past the per-hour recipient limit: accepted and held, then 451 with the reason, one alert, the queue held', async () => {
    const alice = USERS.alice;
    // A recipient the sink defers: the first message stays in the queue, waiting.
    sink.reject.set('slow@far.test', 450);
    const first = await send(alice, ['a1@far.test', 'a2@far.test', 'slow@far.test'], 'first');
    assert.ok(first.ok, JSON.stringify(first));
    await waitFor('the first message at the sink', () => atSink(first.marker).length === 1 || undefined);

    // 3 + 3 = 6 recipients in the hour, over the limit of 5: this message trips the lock.
    const tripping = await send(alice, ['a3@far.test', 'a4@far.test', 'a5@far.test'], 'tripping');
    assert.ok(tripping.ok, `the tripping message is accepted (held): ${JSON.stringify(tripping)}`);
    assert.match(tripping.response, /^250 /);

    const next = await send(alice, ['a6@far.test'], 'next');
    assert.equal(next.ok, false);
    assert.equal((next as { code: number }).code, 451);
    assert.equal((next as { text: string }).text,
      '451 4.7.1 <alice@example.test> sending is suspended: 6 recipients in the last hour exceed the limit of 5; ask your administrator');

    const queue = await gw.queueList();
    const held = queue.filter((m) => (m as { state?: string }).state === 'held');
    assert.equal(held.length, 2, `both of alice's queued messages are held: ${JSON.stringify(queue, null, 2)}`);
    for (const m of held) assert.match(String((m as { held?: { reason: string } }).held?.reason), /^account locked: 6 recipients in the last hour exceed the limit of 5$/);

    await waitFor('the alert in postmaster\'s Maildir', () => alerts().length > 0 || undefined);
    // Another refused submission does not alert again: one alert per lock.
    assert.equal((await send(alice, ['a7@far.test'], 'again')).ok, false);
    await sleep(1500);
    assert.equal(alerts().length, 1, 'exactly one alert');
    const alert = alerts()[0]!.content.toString('latin1');
    assert.match(alert, /Subject: Outbound mail of alice@example\.test suspended: recipients_per_hour/);
    assert.match(alert, /Why: +6 recipients in the last hour exceed the limit of 5/);
    assert.match(alert, /Held: +2 message\(s\)/);

    const locked = gw.logs.filter((l) => l.event === 'account_locked');
    assert.equal(locked.length, 1);
    assert.equal(locked[0]!.user, 'alice@example.test');
    assert.equal(locked[0]!.code, 'recipients_per_hour');
    const text = await metrics();
    assert.match(text, /^portcullis_outbound_held_total\{reason="recipients_per_hour"\} 1$/m);
    assert.match(text, /^portcullis_outbound_held_total\{reason="account_locked"\} 1$/m);
    assert.match(text, /^portcullis_accounts_locked 1$/m);
    // Nothing held went out, and the deferred recipient was not retried while held.
    await sleep(2500);
    assert.equal(atSink(tripping.marker).length, 0);
    assert.equal(sink.rcptLog.filter((r) => r.address === 'slow@far.test').length, 1);
  });

  it('a restart keeps the counts and the locks', async () => {
    const bob = USERS.bob;
    const before = await send(bob, ['b1@far.test', 'b2@far.test', 'b3@far.test', 'b4@far.test'], 'bob-before');
    assert.ok(before.ok, JSON.stringify(before));
    await gw.stop();
    await gw.start();
    // alice is still locked, her mail still held.
    const refused = await send(USERS.alice, ['a8@far.test'], 'after-restart');
    assert.equal(refused.ok, false);
    assert.equal((refused as { code: number }).code, 451);
    assert.equal((await gw.queueList()).filter((m) => (m as { state?: string }).state === 'held').length, 2);
    // bob's 4 recipients were remembered: 2 more make 6 > 5.
    const tripping = await send(bob, ['b5@far.test', 'b6@far.test'], 'bob-after');
    assert.ok(tripping.ok, JSON.stringify(tripping));
    const next = await send(bob, ['b7@far.test'], 'bob-next');
    assert.equal(next.ok, false);
    assert.match((next as { text: string }).text, /^451 4\.7\.1 <bob@example\.test> sending is suspended: 6 recipients in the last hour exceed the limit of 5;/);
  });

  it('`queue release --user` and `user unlock` let the held mail and new mail go', async () => {
    sink.reject.delete('slow@far.test');
    const unlocked = await gw.cliOk(['user', 'unlock', 'alice@example.test']);
    assert.match(unlocked.stdout, /alice@example\.test unlocked/);
    // Unlocked, but the held mail stays held until released.
    await sleep(1500);
    const stillHeld = (await gw.queueList()).filter((m) => (m as { state?: string }).state === 'held' && m.sender === 'alice@example.test');
    assert.equal(stillHeld.length, 2);
    const atSinkBefore = sink.messages.length;
    const released = await gw.cliOk(['queue', 'release', '--user', 'alice@example.test']);
    assert.match(released.stdout, /released 2 message\(s\)/);
    await waitFor('the released mail at the sink', () => {
      const slow = sink.rcptLog.filter((r) => r.address === 'slow@far.test' && r.code === 250).length;
      const a3 = sink.messages.some((m) => m.rcptTo.includes('a3@far.test'));
      return (slow === 1 && a3) || undefined;
    }, { timeoutMs: 20_000 });
    assert.equal(sink.messages.length, atSinkBefore + 2, 'each released message arrives once');
    const fresh = await send(USERS.alice, ['a9@far.test'], 'fresh');
    assert.ok(fresh.ok, `alice may send again: ${JSON.stringify(fresh)}`);
    await waitFor('new mail at the sink', () => atSink(fresh.marker).length === 1 || undefined);
    // bob is still locked: the unlock was for alice only.
    assert.equal((await send(USERS.bob, ['b8@far.test'], 'bob-still')).ok, false);
    assert.match((await gw.cliOk(['user', 'locks'])).stdout, /user:bob@example\.test/);
    // Holding by hand: `queue hold ID` and `release ID`.
    const bobHeld = (await gw.queueList()).filter((m) => m.sender === 'bob@example.test');
    assert.ok(bobHeld.length >= 1);
    const again = await gw.cli(['queue', 'hold', bobHeld[0]!.id]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /held 0 message\(s\)/, 'already held: nothing newly held');
    const bad = await gw.cli(['queue', 'hold', '--user', 'x@example.test', 'ID1']);
    assert.equal(bad.code, 2, 'an ID and --user together are a usage error');
  });

  it('a login from a network not seen for the user is counted', async () => {
    const carol = USERS.carol;
    const first = await send(carol, ['c1@far.test'], 'carol-home', '127.0.0.1');
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal(gw.logs.filter((l) => l.event === 'outbound_new_network' && l.user === carol.address).length, 0, 'the first network is not new');
    const away = await send(carol, ['c2@far.test'], 'carol-away', '127.0.1.1');
    assert.ok(away.ok, JSON.stringify(away));
    const seen = gw.logs.filter((l) => l.event === 'outbound_new_network' && l.user === carol.address);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.network, '127.0.1.0/24');
    assert.equal(seen[0]!.today, 1);
    assert.ok((await send(carol, ['c3@far.test'], 'carol-away-again', '127.0.1.9')).ok);
    assert.equal(gw.logs.filter((l) => l.event === 'outbound_new_network' && l.user === carol.address).length, 1, 'the same /24 again is known');
  });
});
