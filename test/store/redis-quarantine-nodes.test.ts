// Two gateway nodes on one Redis share the quarantine index: a message held on node A (the
// GTUBE band) is listed and searched through node B's `portcullis quarantine`, its original
// shown there, and released from B — delivered by A, which holds it, into A's mailbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { GTUBE_STRING } from '../../src/checks/gtube/gtube.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, startRedis } from './redis-server.js';

const USER = 'alice@example.test';

interface Item { id: string; node?: string; state: string; subject: string; recipients: { address: string; state: string; by?: string }[] }

async function send(gw: Gateway, raw: string): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.ports.mx, secure: false, ignoreTLS: true, name: 'client.example.net' });
  try {
    return (await transport.sendMail({ envelope: { from: 'sender@example.net', to: [USER] }, raw })).response;
  } finally {
    transport.close();
  }
}

const list = async (gw: Gateway, ...args: string[]) => (JSON.parse((await gw.cliOk(['quarantine', 'list', '--json', ...args])).stdout) as { items: Item[] }).items;

test('two nodes, one Redis: held on node A, listed, shown and released through node B', { timeout: 180_000 }, async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const node = (first: boolean) => startGateway({
    users: first ? { [USER]: 'Quarantine-nodes-pw-4242' } : undefined,
    config: {
      store: { backend: 'redis', url: redis.url(4), prefix: 'qn:' },
      policy: { symbols: { GTUBE: 1 }, actions: { GTUBE: 'quarantine' } },
      log: { level: 'info' },
    },
  });
  const a = await node(true);
  t.after(() => a.cleanup());
  const b = await node(false);
  t.after(() => b.cleanup());

  const subject = `held on A ${Date.now()}`;
  const raw = `From: sender@example.net\r\nTo: ${USER}\r\nSubject: ${subject}\r\nMessage-ID: <qn-${Date.now()}@example.net>\r\n\r\nHello,\r\n${GTUBE_STRING}\r\n`;
  assert.match(await send(a, raw), /^250 /);
  const held = await waitFor('the entry listed through node B', async () => (await list(b, '--search', subject))[0]);
  assert.ok(held!.node, 'node B names the node holding it');
  assert.equal((await list(a, '--search', subject))[0]!.node, undefined, 'node A holds it');
  assert.equal(held!.state, 'held');

  const show = JSON.parse((await b.cliOk(['quarantine', 'show', held!.id, '--json'])).stdout) as Item & { headers: { name: string; value: string }[] };
  assert.ok(show.headers.some((h) => h.name === 'Subject' && h.value === subject), 'the headers come from node A');
  assert.equal(show.node, held!.node);
  assert.match((await b.cliOk(['quarantine', 'show', held!.id])).stdout, new RegExp(`held on:\\s+node ${held!.node}`));

  const rel = JSON.parse((await b.cliOk(['quarantine', 'release', held!.id, '--json'])).stdout) as { recipients: { address: string; status: string }[] };
  assert.deepEqual(rel.recipients.map((r) => [r.address, r.status]), [[USER, 'delivered']]);
  const delivered = a.readMailbox(USER).map((m) => m.content);
  assert.ok(delivered.some((c) => c.toString('latin1').includes(subject)), 'delivered into the mailbox on node A, which holds the original');
  assert.ok(!b.readMailbox(USER).some((m) => m.content.toString('latin1').includes(subject)), 'not on node B');
  const after = (await list(b, '--search', subject, '--state', 'released'))[0]!;
  assert.equal(after.recipients[0]!.state, 'released');
  assert.match(after.recipients[0]!.by ?? '', /^cli:/);
  assert.ok(a.logs.some((l) => l.event === 'quarantine_peer_request' && l.method === 'release' && l.outcome === 'ok'));
});
