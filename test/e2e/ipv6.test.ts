// IPv6 end to end (issue 21): MX and submissions listeners on ::1, clients on extra IPv6
// addresses the test adds to the loopback interface (as root), a real DNS server on loopback
// serving the nibble-reversed names. A listed client is refused at RCPT naming the list; a
// forward-confirmed PTR gives iprev=pass, none gives RDNS_NONE; password guessing from two
// addresses of one /64 blocks the whole /64 (a third address there is refused with the right
// password, another /64 logs in); a connection rate per network counts the /64 together.
// Linux routes the added addresses over lo like 127/8: nothing leaves the machine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { authCode, deliverFrom, greeting } from '../store/node-clients.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { strict } from '../helpers/clients.js';
import { freePorts, waitFor } from '../helpers/wait.js';

const LISTED = 'fd00:7::11';
const VERIFIED = 'fd00:7::12';
const NO_PTR = 'fd00:7::13';
const GUESS = ['fd00:7:0:1::21', 'fd00:7:0:1::22'];
const SAME_NET = 'fd00:7:0:1::23';
const OTHER_NET = 'fd00:7:0:9::31';
const RATE = ['fd00:7:0:2::41', 'fd00:7:0:2::42', 'fd00:7:0:2::43', 'fd00:7:0:2::44'];
const RATE_OTHER = 'fd00:7:0:3::51';
const ADDRESSES = [LISTED, VERIFIED, NO_PTR, ...GUESS, SAME_NET, OTHER_NET, ...RATE, RATE_OTHER];

/** The 32 nibbles of an IPv6 address, reversed and dotted (RFC 3596 s2.5). */
function nibbles(ip: string): string {
  const [head, tail = ''] = ip.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.');
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: `${r.stderr}${r.error?.message ?? ''}` };
}

test('IPv6 end to end: DNS lists, rDNS, brute force and rate limits per /64', { timeout: 180_000 }, async (t) => {
  const why = process.getuid?.() !== 0 ? 'adding IPv6 addresses to lo needs root' : ip(['-6', 'addr', 'show', 'dev', 'lo']).ok ? undefined : 'the ip command (iproute2) is missing';
  if (why) {
    if (strict) throw new Error(why);
    t.skip(why);
    return;
  }
  for (const a of ADDRESSES) {
    const r = ip(['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
    assert.ok(r.ok || /File exists/.test(r.err), `ip addr add ${a}: ${r.err}`);
  }
  t.after(() => {
    for (const a of ADDRESSES) ip(['-6', 'addr', 'del', `${a}/128`, 'dev', 'lo']);
  });

  const dns = await startDnsServer({
    [`${nibbles(LISTED)}.bl.test`]: [{ type: 'A', data: '127.0.0.2' }, { type: 'TXT', data: 'v6 listed' }],
    [`${nibbles(VERIFIED)}.ip6.arpa`]: [{ type: 'PTR', data: 'mail6.good.test' }],
    'mail6.good.test': [{ type: 'AAAA', data: VERIFIED }],
  });
  t.after(() => dns.close());
  const [mx6, subs6] = await freePorts(2, '::1');
  const gw = await startGateway({
    users: userMap('alice', 'bob'),
    config: ({ ports }) => ({
      listeners: [
        ...smtpListeners(ports),
        { name: 'mx6', kind: 'mx', address: '::1', port: mx6 },
        { name: 'submissions6', kind: 'submissions', address: '::1', port: subs6 },
      ],
      dns: { servers: [dns.server], timeout: '2s', attempts: 2 },
      dnsbl: { lists: [{ zone: 'bl.test', weight: 2, codes: ['127.0.0.2'] }], threshold: 1 },
      auth: { brute_force: { pair_limit: 100, ip_limit: 100, net_limit: 4, base_delay: '1ms', max_delay: '5ms', block_time: '10m' } },
      limits: { connection_rate_per_net: 8, window: '1h' },
      log: { level: 'info' },
    }),
  });
  t.after(() => gw.cleanup());
  const mx = { host: '::1', port: mx6! };
  const subs = { host: '::1', port: subs6! };
  const deliver = (from: string) => deliverFrom(gw, from, { tag: 'v6', at: mx });
  const login = (from: string, user: string, password: string) => authCode(gw, from, user, password, subs);

  // A DNS-listed IPv6 client: refused at RCPT, the list's text in the reply.
  const c = await SmtpClient.connect(mx6!, { host: '::1', localAddress: LISTED });
  await c.ehlo('client.example.net');
  assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
  const r = await c.cmd(`RCPT TO:<${USERS.alice.address}>`);
  assertReply(r, 554, '5.7.1', c.describe());
  assert.equal(r.text, `5.7.1 Service unavailable; Client host [${LISTED}] blocked using bl.test; v6 listed`);
  await c.quit();

  // rDNS: forward-confirmed PTR → iprev=pass; no PTR → RDNS_NONE.
  const good = await deliver(VERIFIED);
  assert.ok(good.includes(`iprev=pass policy.iprev=${VERIFIED} (mail6.good.test)`), good.slice(0, 1500));
  assert.match(good, /^Received: from client\.example\.net \([^)]*\[IPv6:fd00:7::12\]\)/m, 'the Received line names the IPv6 client as an address literal');
  assert.match(good, /client-ip="fd00:7::12"/, 'SPF was asked about the IPv6 client');
  const none = await deliver(NO_PTR);
  assert.match(none, /tests=[^\r\n]*RDNS_NONE/, none.slice(0, 1500));

  // Brute force per /64: guesses from two addresses of fd00:7:0:1::/64 block the network.
  for (let i = 0; i < 4; i++) assert.equal(await login(GUESS[i % 2]!, USERS.bob.address, `wrong-guess-${i}`), 535);
  const block = await waitFor('the /64 blocked', () => gw.logs.find((l) => l.event === 'auth_block' && l.scope === 'net'));
  assert.ok(GUESS.includes(String(block.ip)), JSON.stringify(block));
  assert.equal(await login(SAME_NET, USERS.alice.address, USERS.alice.password), 535, 'another address of the blocked /64, with the right password');
  assert.equal(await login(OTHER_NET, USERS.alice.address, USERS.alice.password), 235, 'another /64 is not affected');

  // A connection rate per network (8 an hour): eight connections from four addresses of one /64,
  // then the ninth is refused.
  for (let i = 0; i < 8; i++) assert.match(await greeting(gw, RATE[i % RATE.length]!, mx), /^220 /);
  assert.match(await greeting(gw, RATE[0]!, mx), /^421 4\.7\.0 /, 'the /64 counts as one network');
  assert.match(await greeting(gw, RATE_OTHER, mx), /^220 /, 'another /64 is greeted');
});
