import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import PostalMime from 'postal-mime';
import { listTarget, parseRequest, verpAddress, listId } from './addresses.js';
import { readBounce, deliveryStatusGroups } from './bounces.js';
import { composePost, memberCopy, splitMessage, plainText } from './compose.js';
import { ListStore, parseSettings, ListError, type List } from './store.js';
import { ListTokens, TokenError } from './tokens.js';
import { MemoryStore } from '../store/memory-store.js';

const isList = (a: string) => a === 'team@example.org' || a === 'dev-ops@example.org';

describe('list addresses', () => {
  it('classifies the RFC 2369 addresses and VERP bounces', () => {
    assert.deepEqual(listTarget('Team', 'example.org', isList), { kind: 'post', list: 'team@example.org' });
    assert.deepEqual(listTarget('team-request', 'example.org', isList), { kind: 'request', list: 'team@example.org' });
    assert.deepEqual(listTarget('team-subscribe', 'example.org', isList), { kind: 'subscribe', list: 'team@example.org' });
    assert.deepEqual(listTarget('team-leave', 'example.org', isList), { kind: 'unsubscribe', list: 'team@example.org' });
    assert.deepEqual(listTarget('team-owner', 'example.org', isList), { kind: 'owner', list: 'team@example.org' });
    assert.deepEqual(listTarget('dev-ops-request', 'example.org', isList), { kind: 'request', list: 'dev-ops@example.org' });
    assert.deepEqual(listTarget('team-bounces+bob.smith=mail.example.net', 'example.org', isList), { kind: 'bounce', list: 'team@example.org', member: 'bob.smith@mail.example.net' });
    assert.deepEqual(listTarget('team-bounces', 'example.org', isList), { kind: 'bounce', list: 'team@example.org' });
    assert.equal(listTarget('teams', 'example.org', isList), undefined);
    assert.equal(listTarget('team-request', 'other.org', isList), undefined);
    assert.equal(verpAddress('team@example.org', 'bob@mail.example.net'), 'team-bounces+bob=mail.example.net@example.org');
    assert.equal(listId('team@example.org'), 'team.example.org');
  });

  it('reads the command from the Subject, else the body, and a token anywhere', () => {
    assert.deepEqual(parseRequest('subscribe', ''), { command: 'subscribe' });
    assert.deepEqual(parseRequest('Re: Fwd: UNSUBSCRIBE please', ''), { command: 'unsubscribe' });
    assert.deepEqual(parseRequest('', '\n  status\nthanks'), { command: 'status' });
    assert.deepEqual(parseRequest('hello', '> subscribe\nhelp'), { command: 'help' });
    assert.deepEqual(parseRequest('what is this', 'no idea'), { command: 'unknown' });
    const token = `${'a'.repeat(60)}.${'B'.repeat(43)}`;
    assert.deepEqual(parseRequest(`Re: confirm ${token}`, 'subscribe'), { command: 'confirm', token });
  });
});

describe('list settings', () => {
  it('parses key=value and names the key at fault', () => {
    assert.deepEqual(parseSettings(['owners=A@Example.org,b@example.org', 'reply_to=list']), { owners: ['a@example.org', 'b@example.org'], reply_to: 'list' });
    assert.throws(() => parseSettings(['reply_to=all']), /reply_to: must be sender or list/);
    assert.throws(() => parseSettings(['colour=red']), /unknown setting "colour"/);
    assert.throws(() => parseSettings(['owners=not an address']), /owners "not an address" is not an address/);
  });
});

describe('list store', () => {
  it('makes a member confirmed only through confirm(); disables after the bounce limit', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lists-'));
    const store = ListStore.open(path.join(dir, 'lists.db'));
    try {
      store.create('team@example.org', { description: 'Team' });
      assert.throws(() => store.create('team@example.org', {}), ListError);
      assert.equal(store.request('team@example.org', 'bob@example.net', 10), true);
      assert.equal(store.member('team@example.org', 'bob@example.net')?.state, 'pending');
      assert.deepEqual(store.members('team@example.org', 'confirmed'), []);
      store.confirm('team@example.org', 'bob@example.net');
      assert.equal(store.member('team@example.org', 'bob@example.net')?.state, 'confirmed');
      assert.equal(store.bounce('team@example.org', 'bob@example.net', 2)?.state, 'confirmed');
      assert.equal(store.bounce('team@example.org', 'bob@example.net', 2)?.state, 'disabled');
      assert.throws(() => store.request('team@example.org', 'x@example.net', 1), /lists.max_members/);
      store.delete('team@example.org');
      assert.equal(store.member('team@example.org', 'bob@example.net'), undefined, 'members go with their list');
    } finally {
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('list tokens', () => {
  it('are single-use, expire, and refuse alteration', async () => {
    const state = new MemoryStore();
    let now = 1_000_000;
    const tokens = new ListTokens(Buffer.alloc(32, 7), state, () => now);
    const t = tokens.sign('team@example.org', 'bob@example.net', 'subscribe', 60_000);
    assert.equal((await tokens.verify(t)).address, 'bob@example.net');
    assert.equal(ListTokens.find(`Subject: Re: confirm ${t}`), t);
    const flipped = t.slice(0, 5) + (t[5] === 'A' ? 'B' : 'A') + t.slice(6);
    await assert.rejects(tokens.verify(flipped), (e: TokenError) => e.code === 'ALTERED');
    await tokens.consume(t);
    await assert.rejects(tokens.consume(t), (e: TokenError) => e.code === 'REUSED');
    const late = tokens.sign('team@example.org', 'bob@example.net', 'subscribe', 60_000);
    now += 60_001;
    await assert.rejects(tokens.verify(late), (e: TokenError) => e.code === 'EXPIRED');
    const leave = tokens.sign('team@example.org', 'bob@example.net', 'leave', 0);
    now += 365 * 86_400_000;
    await tokens.consume(leave);
    assert.equal((await tokens.consume(leave)).action, 'leave', 'one-click unsubscribe may be repeated');
    await state.close();
  });
});

describe('bounces', () => {
  const dsn = (action: string, status: string) => Buffer.from(
    'From: MAILER-DAEMON@mx.example.net\r\nTo: team-bounces+bob=example.net@example.org\r\nSubject: failure\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nIt failed.\r\n' +
    `--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: ${action}\r\nStatus: ${status}\r\nDiagnostic-Code: smtp; 550 no such user\r\n\r\n--b--\r\n`);

  it('reads hard and temporary failures from a DSN', async () => {
    assert.deepEqual(await readBounce(dsn('failed', '5.1.1')), { hard: true, status: '5.1.1', recipient: 'bob@example.net', reason: 'DSN: action failed, status 5.1.1, smtp; 550 no such user' });
    assert.equal((await readBounce(dsn('delayed', '4.2.2'))).hard, false);
    assert.equal((await readBounce(dsn('failed', '4.4.7'))).hard, false);
    assert.deepEqual(deliveryStatusGroups('Reporting-MTA: dns; x\n\nAction: failed\nStatus:\n 5.0.0'), [{ 'reporting-mta': 'dns; x' }, { action: 'failed', status: '5.0.0' }]);
  });
  it('counts a bounce without DSN as hard unless it reads as temporary', async () => {
    assert.equal((await readBounce(Buffer.from('Subject: x\r\n\r\nUser unknown\r\n'))).hard, true);
    assert.equal((await readBounce(Buffer.from('Subject: x\r\n\r\nMailbox full, will retry\r\n'))).hard, false);
  });
});

describe('content policy and headers', () => {
  const list: List = { address: 'team@example.org', description: 'Team', owners: [], moderators: [], reply_to: 'sender', content: 'plain', posting: 'members', created: 0 };
  const post = Buffer.from([
    'DKIM-Signature: v=1; a=rsa-sha256; d=strict.example; s=s1; b=abc',
    'Return-Path: <alice@strict.example>',
    'From: Alice Example <alice@strict.example>',
    'To: team@example.org',
    'Subject: Minutes',
    'Message-ID: <m1@strict.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="x"',
    '',
    '--x',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><body><p>Hello <b>team</b></p><script>alert(1)</script></body></html>',
    '--x',
    'Content-Type: application/pdf; name="minutes.pdf"',
    'Content-Disposition: attachment; filename="minutes.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    'JVBERi0xLjQK',
    '--x--',
    '',
  ].join('\r\n'));

  it('turns HTML into text and removes attachments with a note', async () => {
    const r = plainText(await PostalMime.parse(post));
    assert.match(r.text, /Hello team/);
    assert.doesNotMatch(r.text, /alert|<b>/);
    assert.equal(r.note, '[The list removed 1 attachment (minutes.pdf): it sends plain text only.]');
  });

  it('rewrites From for a strict author domain, keeps the author in Reply-To and X-Original-From, strips the author\'s signature', async () => {
    const out = await composePost(post, { list, author: { name: 'Alice Example', address: 'alice@strict.example' }, rewriteFrom: true, webUrl: 'https://lists.example.org:8443' });
    const copy = memberCopy(out, list, 'https://lists.example.org:8443', 'TOKEN');
    const { fields } = splitMessage(copy);
    const get = (k: string) => fields.filter((f) => f.key === k).map((f) => f.line.slice(k.length + 1).trim());
    assert.deepEqual(get('from'), ['"Alice Example via Team" <team@example.org>']);
    assert.deepEqual(get('reply-to'), ['"Alice Example" <alice@strict.example>']);
    assert.deepEqual(get('x-original-from'), ['Alice Example <alice@strict.example>']);
    assert.deepEqual(get('dkim-signature'), []);
    assert.deepEqual(get('return-path'), []);
    assert.deepEqual(get('list-id'), ['"Team" <team.example.org>']);
    assert.deepEqual(get('list-post'), ['<mailto:team@example.org>']);
    assert.deepEqual(get('list-unsubscribe'), ['<https://lists.example.org:8443/list/unsubscribe?token=TOKEN>, <mailto:team-request@example.org?subject=unsubscribe>']);
    assert.deepEqual(get('list-unsubscribe-post'), ['List-Unsubscribe=One-Click']);
    assert.deepEqual(get('precedence'), ['list']);
    assert.deepEqual(get('content-type'), ['text/plain; charset=utf-8']);
    const parsed = await PostalMime.parse(copy);
    assert.equal(parsed.attachments.length, 0);
    assert.match(parsed.text ?? '', /Hello team[\s\S]*\[The list removed 1 attachment \(minutes\.pdf\)/);
    assert.equal(parsed.messageId, '<m1@strict.example>');
  });

  it('keeps From for a relaxed domain; Reply-To the list when the list says so', async () => {
    const out = await composePost(post, { list: { ...list, reply_to: 'list' }, author: { name: 'Alice Example', address: 'alice@strict.example' }, rewriteFrom: false, webUrl: 'https://x' });
    const { fields } = splitMessage(out);
    assert.deepEqual(fields.filter((f) => f.key === 'from').map((f) => f.line), ['From: Alice Example <alice@strict.example>']);
    assert.deepEqual(fields.filter((f) => f.key === 'reply-to').map((f) => f.line), ['Reply-To: <team@example.org>']);
    assert.equal(fields.some((f) => f.key === 'x-original-from'), false);
  });
});
