import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../log.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Resolver } from '../dns/types.js';
import { listsConfigSchema } from './config.js';
import { ListService } from './service.js';
import { ListStore } from './store.js';
import { ListTokens } from './tokens.js';

const noDns: Resolver = { lookup: async () => ({ status: 'nxdomain' }) as never };
const request = (from: string, subject: string) => Buffer.from(`From: ${from}\r\nTo: team-request@example.org\r\nSubject: ${subject}\r\n\r\n\r\n`);

describe('list requests (service)', () => {
  let dir: string;
  let store: ListStore;
  let state: MemoryStore;
  const outbox: { to: string[]; raw: string }[] = [];
  let service: ListService;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lists-svc-'));
    store = ListStore.open(path.join(dir, 'lists.db'));
    state = new MemoryStore();
    store.create('team@example.org', {});
    service = new ListService({
      store, state, tokens: new ListTokens(Buffer.alloc(32, 1), state), resolver: noDns, logger: silentLogger(), hostname: 'mx.example.org',
      config: listsConfigSchema.parse({ rate: { per_address: 2, per_ip: 3 } }), webUrl: 'https://lists.example.org',
      submit: async (env, raw) => void outbox.push({ to: env.to, raw: raw.toString() }), sign: async (copy) => copy,
    });
  });
  after(async () => {
    store.close();
    await state.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const target = { kind: 'request', list: 'team@example.org' } as const;

  it('answers per address and per source IP only up to lists.rate', async () => {
    outbox.length = 0;
    for (let i = 0; i < 3; i++) await service.handle(target, { sender: 'a@example.net', client: '192.0.2.1', junk: false }, request('a@example.net', 'help'));
    assert.equal(outbox.length, 2, 'per_address 2');
    for (const who of ['b', 'c', 'd', 'e']) await service.handle(target, { sender: `${who}@example.net`, client: '192.0.2.2', junk: false }, request(`${who}@example.net`, 'help'));
    assert.equal(outbox.length, 5, 'per_ip 3: the fourth address from one IP is not answered');
    assert.deepEqual(outbox.map((m) => m.to[0]), ['a@example.net', 'a@example.net', 'b@example.net', 'c@example.net', 'd@example.net']);
  });

  it('never answers a bounce, an automatic message or spam', async () => {
    outbox.length = 0;
    await service.handle(target, { sender: '', client: '192.0.2.20', junk: false }, request('e@example.net', 'subscribe'));
    await service.handle(target, { sender: 'e@example.net', client: '192.0.2.21', junk: true }, request('e@example.net', 'subscribe'));
    await service.handle(target, { sender: 'e@example.net', client: '192.0.2.22', junk: false }, Buffer.concat([Buffer.from('Auto-Submitted: auto-replied\r\n'), request('e@example.net', 'subscribe')]));
    assert.deepEqual(outbox, []);
  });

  it('a confirmation by mail works once; the second use is refused and changes nothing', async () => {
    outbox.length = 0;
    await service.handle({ kind: 'subscribe', list: 'team@example.org' }, { sender: 'f@example.net', client: '192.0.2.30', junk: false }, request('f@example.net', 'x'));
    const token = /Subject: confirm (\S+)/.exec(outbox[0]!.raw)![1]!;
    assert.equal(store.member('team@example.org', 'f@example.net'), undefined, 'a request alone makes no member, not even pending');
    await service.handle(target, { sender: 'f@example.net', client: '192.0.2.31', junk: false }, request('f@example.net', `Re: confirm ${token}`));
    assert.equal(store.member('team@example.org', 'f@example.net')?.state, 'confirmed');
    store.remove('team@example.org', 'f@example.net');
    // (from another address: f's two requests are its lists.rate.per_address)
    await service.handle(target, { sender: 'g@example.net', client: '192.0.2.32', junk: false }, request('g@example.net', `Re: confirm ${token}`));
    assert.equal(store.member('team@example.org', 'f@example.net'), undefined, 'a used token does not subscribe again');
    assert.match(outbox.at(-1)!.raw, /The confirmation could not be used: the link was already used/);
  });

  it('finds the list and member of a reported copy: its own token, then VERP, then a listed Original-Rcpt-To', async () => {
    store.confirm('team@example.org', 'h@example.net');
    const tokens = new ListTokens(Buffer.alloc(32, 1), state);
    const leave = tokens.sign('team@example.org', 'h@example.net', 'leave', 0);
    const unsubscribe = `<https://lists.example.org/list/unsubscribe?token=${leave}>, <mailto:team-request@example.org?subject=unsubscribe>`;
    assert.deepEqual(await service.attributeCopy({ unsubscribe, mailFrom: 'team-bounces+i=example.net@example.org', rcptTo: ['j@example.net'] }),
      { list: 'team@example.org', member: 'h@example.net', by: 'unsubscribe-token' }, 'the signed token wins');
    const altered = unsubscribe.replace(/token=(\S{5})/, (_, p: string) => `token=${p.slice(0, 4)}${p[4] === 'A' ? 'B' : 'A'}`);
    assert.deepEqual(await service.attributeCopy({ unsubscribe: altered, mailFrom: 'team-bounces+i=example.net@example.org', rcptTo: [] }),
      { list: 'team@example.org', member: 'i@example.net', by: 'verp' }, 'an altered token counts for nothing');
    assert.deepEqual(await service.attributeCopy({ listId: 'team.example.org', rcptTo: ['nobody@example.net', 'H@example.net'] }), { list: 'team@example.org', member: 'h@example.net', by: 'rcpt-to' });
    assert.deepEqual(await service.attributeCopy({ listId: 'team.example.org', rcptTo: ['nobody@example.net'] }), { list: 'team@example.org' }, 'a recipient not on the list is not taken for a member');
    assert.equal(await service.attributeCopy({ listId: 'other.example.org', mailFrom: 'news-bounces+h=example.net@example.org', rcptTo: ['h@example.net'] }), undefined, 'not our list');
  });

  it('a suppressed member gets nothing, is not invited again, and stays suppressed until it confirms itself', async () => {
    service.suppress('team@example.org', 'h@example.net', 'complaint 1');
    assert.equal(store.member('team@example.org', 'h@example.net')?.state, 'suppressed');
    assert.equal(store.remove('team@example.org', 'h@example.net'), false);
    outbox.length = 0;
    const r = await service.invite('team@example.org', ['h@example.net']);
    assert.deepEqual(r.invited, []);
    assert.match(r.skipped[0]!.reason, /suppressed after a complaint/);
    assert.deepEqual(outbox, [], 'no confirmation request to someone who complained');
    assert.equal(await service.distribute(store.require('team@example.org'), request('x@example.org', 'hi'), { name: '', address: 'x@example.org' }), 0, 'no copy for a suppressed member');
    store.confirm('team@example.org', 'h@example.net');
    assert.equal(store.member('team@example.org', 'h@example.net')?.state, 'confirmed');
  });
});
