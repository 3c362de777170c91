// The queue seen through the CLI (`queue list --json`, `show`, `flush`, `delete`) with a next hop
// that is down, refuses temporarily (450) or permanently (550); and `config check`.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { assertReply, EXT_SENDER } from '../helpers/fixtures.js';
import { baseConfig, type ConfigObject, mergeConfig, prepareGateway, runCli, showCli, startGateway, type Gateway, type QueueEntry } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { queuedId, SmtpClient, transaction } from '../helpers/smtp-client.js';
import { freePorts, sleep, waitFor } from '../helpers/wait.js';

describe('queue CLI', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let downPort: number;
  let laterPort: number;
  let deadPort: number;
  let sink: Sink;
  let laterSink: Sink | undefined;

  before(async () => {
    [downPort, laterPort, deadPort] = (await freePorts(3)) as [number, number, number];
    sink = await Sink.start({ reject: { 'busy@refusing.test': 450, 'gone@refusing.test': 550 } });
    const route = (domain: string, port: number) => ({ domain, host: '127.0.0.1', port, protocol: 'smtp', tls: 'none' });
    gw = await startGateway({
      config: {
        queue: { retry_initial: '1h', retry_max: '2h' },
        relay: {
          domains: [{ domain: 'down.test' }, { domain: 'later.test' }, { domain: 'dead.test' }, { domain: 'refusing.test' }],
          routes: [route('down.test', downPort), route('later.test', laterPort), route('dead.test', deadPort), route('refusing.test', sink.port), route('*', sink.port)],
        },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await laterSink?.close();
  });

  async function send(to: string, subject: string): Promise<string> {
    const c = await SmtpClient.connect(gw.ports.mx);
    try {
      await c.ehlo();
      const res = await transaction(c, EXT_SENDER, [to], makeMessage({ from: EXT_SENDER, to, subject }));
      assertReply(res.final!, 250, '2.0.0', c.describe());
      const id = queuedId(res.final!);
      assert.ok(id, `250 must say "queued as <ID>": ${res.final!.raw}`);
      return id;
    } finally {
      await c.quit();
    }
  }

  async function entry(id: string): Promise<QueueEntry | undefined> {
    return (await gw.queueList()).find((e) => e.id === id);
  }

  async function waitDeferred(id: string, address: string): Promise<QueueEntry> {
    return waitFor(`queue entry ${id} with ${address} deferred after a delivery attempt`, async () => {
      const e = await entry(id);
      const r = e?.recipients.find((x) => x.address === address);
      return r && r.status === 'deferred' && r.attempts >= 1 ? e : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300, details: () => gw.tail(20) });
  }

  it('queue list --json on an empty queue prints []', async () => {
    const r = await gw.cliOk(['queue', 'list', '--json']);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  it('a message to a route whose host is down stays queued as deferred; `queue list --json` shows {id, sender, recipients[{address,status,attempts,last_reply}], size, arrived}', async () => {
    const m = marker('down');
    const id = await send('someone@down.test', m);
    const e = await waitDeferred(id, 'someone@down.test');
    assert.equal(e.id, id);
    assert.equal(e.sender, EXT_SENDER);
    assert.equal(typeof e.size, 'number');
    assert.ok(e.size > 0);
    assert.ok(typeof e.arrived === 'string' || typeof e.arrived === 'number', `arrived: ${JSON.stringify(e.arrived)}`);
    assert.ok(!Number.isNaN(new Date(e.arrived).getTime()), `arrived must be a date: ${JSON.stringify(e.arrived)}`);
    assert.equal(e.recipients.length, 1);
    const r = e.recipients[0]!;
    for (const k of ['address', 'attempts', 'last_reply', 'status']) assert.ok(k in r, `recipient entry lacks ${k}: ${JSON.stringify(r)}`);
    assert.equal(r.address, 'someone@down.test');
    assert.equal(r.status, 'deferred');
    assert.ok(Number.isInteger(r.attempts) && r.attempts >= 1, JSON.stringify(r));
    assert.equal(typeof r.last_reply, 'string', `last_reply should say why (connection refused): ${JSON.stringify(r)}`);

    const show = await gw.cli(['queue', 'show', id]);
    assert.equal(show.code, 0, showCli(['queue', 'show', id], show));
    assert.match(show.stdout, new RegExp(id));
    assert.match(show.stdout, /someone@down\.test/);

    const human = await gw.cliOk(['queue', 'list']);
    assert.match(human.stdout, new RegExp(id), 'plain `queue list` names the message too');
  });

  it('`queue flush` retries the deferred message once the next hop is up: delivered, then gone from the queue', async () => {
    const m = marker('flush');
    const id = await send('someone@later.test', m);
    await waitDeferred(id, 'someone@later.test');
    laterSink = await Sink.start({ port: laterPort });
    await sleep(300);
    assert.equal(laterSink.messages.length, 0, 'no automatic retry before retry_initial (1h)');
    const r = await gw.cli(['queue', 'flush']);
    assert.equal(r.code, 0, showCli(['queue', 'flush'], r));
    let got;
    try {
      got = await laterSink.waitFor(m, 20_000);
    } catch (err) {
      const e = await entry(id);
      throw new Error(`${(err as Error).message}\n\`queue flush\` printed: ${r.stdout.trim()}\nqueue entry now: ${JSON.stringify(e)}`);
    }
    assert.deepEqual(got.rcptTo, ['someone@later.test']);
    await waitFor(`message ${id} to leave the queue after delivery`, async () => !(await entry(id)), { timeoutMs: 10_000, intervalMs: 300 });
  });

  it('`queue delete ID` removes a deferred message; `queue show ID` then fails', async () => {
    const m = marker('delete');
    const id = await send('x@dead.test', m);
    await waitDeferred(id, 'x@dead.test');
    const del = await gw.cli(['queue', 'delete', id]);
    assert.equal(del.code, 0, showCli(['queue', 'delete', id], del));
    assert.equal(await entry(id), undefined, 'still listed after delete');
    const show = await gw.cli(['queue', 'show', id]);
    assert.notEqual(show.code, 0, `queue show of a deleted message should fail\n${showCli(['queue', 'show', id], show)}`);
    await gw.cliOk(['queue', 'flush']);
    await sleep(500);
    assert.equal(await entry(id), undefined, 'a flush must not bring it back');
  });

  it('`queue delete` of an unknown ID exits non-zero', async () => {
    const r = await gw.cli(['queue', 'delete', 'NO-SUCH-ID-123']);
    assert.notEqual(r.code, 0, showCli(['queue', 'delete', 'NO-SUCH-ID-123'], r));
  });

  it('a 450 from the next hop leaves the recipient deferred with last_reply naming 450', async () => {
    const id = await send('busy@refusing.test', marker('busy'));
    const e = await waitDeferred(id, 'busy@refusing.test');
    const r = e.recipients.find((x) => x.address === 'busy@refusing.test')!;
    assert.match(String(r.last_reply), /450/, JSON.stringify(r));
  });

  it('a 550 from the next hop fails the recipient and sends no bounce to the (unauthenticated) sender', async () => {
    const m = marker('gone');
    const id = await send('gone@refusing.test', m);
    await waitFor('the sink to refuse gone@refusing.test', () => sink.rcptLog.some((x) => x.address === 'gone@refusing.test' && x.code === 550), { timeoutMs: 20_000 });
    await sleep(2000);
    const e = await entry(id);
    if (e) {
      const r = e.recipients.find((x) => x.address === 'gone@refusing.test');
      assert.equal(r?.status, 'failed', `a 550 must not stay ${r?.status}: ${JSON.stringify(e)}`);
    }
    const bounces = sink.messages.filter((x) => x.rcptTo.includes(EXT_SENDER) || x.rcptTo.some((a) => a.toLowerCase() === EXT_SENDER));
    assert.deepEqual(bounces.map((b) => b.raw.toString('utf8').slice(0, 300)), [], 'no bounce to a possibly forged sender');
  });
});

describe('config check', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-config-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, doc: unknown): Promise<string> {
    const file = path.join(dir, name);
    await fs.writeFile(file, typeof doc === 'string' ? doc : YAML.stringify(doc));
    return file;
  }

  const good = () => baseConfig({ mx: 2525, submission: 5870, submissions: 4650, pop3: 1100, pop3s: 9950, imap: 1430, imaps: 9930 }, '/tmp/portcullis-config-check-data');

  it('`config check FILE` exits 0 for a good file', async () => {
    const file = await write('good.yaml', good());
    const r = await runCli(['config', 'check', file]);
    assert.equal(r.code, 0, showCli(['config', 'check', file], r));
  });

  for (const [name, patch, key] of [
    ['a size that is not a size', { smtp: { max_message_size: 'lots' } }, 'smtp.max_message_size'],
    ['an unknown key (typo)', { smtp: { max_mesage_size: '10MiB' } }, 'smtp.max_mesage_size'],
    ['a bad enum value', { smtp: { bare_newline: 'sometimes' } }, 'smtp.bare_newline'],
    ['a listener port out of range', { listeners: [{ name: 'mx', kind: 'mx', address: '127.0.0.1', port: 70000 }] }, 'listeners[0].port'],
  ] as const) {
    it(`\`config check FILE\` exits non-zero and names ${key} for ${name}`, async () => {
      const doc = mergeConfig(good(), patch as ConfigObject);
      const file = await write(`bad-${key.replace(/\W/g, '_')}.yaml`, doc);
      const r = await runCli(['config', 'check', file]);
      assert.notEqual(r.code, 0, showCli(['config', 'check', file], r));
      assert.ok(`${r.stdout}${r.stderr}`.includes(key), `the message should name ${key}\n${showCli(['config', 'check', file], r)}`);
    });
  }

  it('`config check` of a YAML syntax error exits non-zero', async () => {
    const file = await write('syntax.yaml', 'smtp: {max_message_size: [\n');
    const r = await runCli(['config', 'check', file]);
    assert.notEqual(r.code, 0, showCli(['config', 'check', file], r));
  });

  it('`serve` refuses to start with a bad config and names the key', async () => {
    const gw = await prepareGateway({ config: { smtp: { max_message_size: 'lots' } } });
    try {
      const r = await runCli(['serve', '--config', gw.configFile], { timeoutMs: 20_000 });
      assert.notEqual(r.code, 0, showCli(['serve'], r));
      assert.ok(`${r.stdout}${r.stderr}`.includes('smtp.max_message_size'), showCli(['serve'], r));
    } finally {
      await gw.cleanup();
    }
  });
});
