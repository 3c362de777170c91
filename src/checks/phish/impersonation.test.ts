import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferModel } from '../../mime/model.js';
import { conn } from '../test-support.js';
import { editDistanceAtMostOne, impersonationCheck, unmask } from './impersonation.js';

const check = impersonationCheck({ ownDomains: ['example.org'], brands: [{ names: ['Acme Bank'], domains: ['acmebank.example'] }] });

async function symbols(from: string, body = 'Hello.', extra = ''): Promise<Record<string, string>> {
  const raw = Buffer.from(`From: ${from}\r\nTo: a@example.org\r\nSubject: t\r\n${extra}Content-Type: text/html\r\n\r\n${body}\r\n`);
  const model = bufferModel(raw, { maxScanBytes: 1 << 20 });
  const r = await check.run({ message: model, conn: conn(), facts: {} } as never);
  return Object.fromEntries((r.symbols ?? []).map((s) => [s.name, s.reason]));
}

test('a brand in the display name over an unrelated domain is FROM_BRAND_MISMATCH, with the evidence in the reason', async () => {
  const s = await symbols('"State Farm Feedback" <survey@drivereadykit.sbs>');
  assert.match(s.FROM_BRAND_MISMATCH ?? '', /state farm.*drivereadykit\.sbs/);
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('Amazon.co.jp <info@r46j8x0.cn>'));
  assert.ok(!('FROM_BRAND_MISMATCH' in await symbols('PayPal Security Team <service@mail.paypal-support.com>')), 'a domain named after the brand is taken as the brand\'s');
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('"Wells Fargo Online" <alerts@gmail.com>'), 'a bank does not write from free mail');
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('Acme Bank <x@phish.example.com>'), 'a configured brand');
});

test('the brand\'s own domains, its ESP-named domains and shared ESP domains are not a mismatch', async () => {
  for (const from of [
    'PayPal <service@paypal.com>', 'Amazon <shipment-tracking@amazon.co.uk>', 'Marriott Bonvoy <news@email-marriott.com>',
    'Microsoft account team <account-security-noreply@accountprotection.microsoft.com>', 'Microsoft 365 <no-reply@sharepointonline.com>',
    'QuickBooks Payments <quickbooks@sendgrid.net>', 'Acme Bank <news@mail.acmebank.example>', 'DocuSign <dse@docusign.net>',
  ]) assert.deepEqual(await symbols(from), {}, from);
});

test('common-word brands count only alone; affiliations and "X at Y" name the real sender', async () => {
  for (const from of [
    'Chase Miller <chase@gmail.com>', 'Target Practice Club <club@example.net>', 'Apple Orchard Farm <farm@example.net>',
    'Masami Hiramatsu (Google) <mhiramat@kernel.org>', 'Amazon Benefits at Fidelity <benefits@fidelity.com>', 'Prime Numbers Weekly <x@example.net>',
  ]) assert.ok(!('FROM_BRAND_MISMATCH' in await symbols(from)), from);
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('Chase Online Banking <x@evil.example.net>'));
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('Support (PayPal) <x@evil.example.net>'));
});

test('a hyphenated display name still names its brand; a brand spelt with its hyphen is still itself', async () => {
  assert.match((await symbols('DHL-Post Office <delivery-@muthihi.example.za>')).FROM_BRAND_MISMATCH ?? '', /dhl/);
  assert.ok('FROM_BRAND_MISMATCH' in await symbols('"UPS-Delivery" <track@parcel.example.net>'), 'a strict brand with service words');
  assert.ok(!('FROM_BRAND_MISMATCH' in await symbols('T-Mobile <alerts@t-mobile.com>')));
  assert.ok(!('FROM_BRAND_MISMATCH' in await symbols('Jean-Luc Picard <jl@example.net>')));
  assert.ok(!('FROM_BRAND_MISMATCH' in await symbols('"Chase-Miller Consulting" <office@example.net>')), 'a strict brand beside another word');
});

test('Japanese brands are found inside a display name written without spaces, RFC 2047 encoded or not', async () => {
  const b64 = (t: string) => `=?UTF-8?B?${Buffer.from(t).toString('base64')}?=`;
  for (const [from, brand] of [
    [`${b64('三井住友カード株式会社')} <info@fjfjjc.example.com>`, '三井住友カード'],
    [`${b64('【重要】イオンカードからのお知らせ')} <no-reply.email.aeon@lygsjzhentan.example.cn>`, 'イオンカード'],
    [`${b64('ＪＣＢカード')} <card@secure-jcb.example.top>`, 'jcb'],
    [`${b64('えきねっと')} <info@ekinet-user.example.com>`, 'えきねっと'],
    [`${b64('ETC利用照会サービス')} <etc@meisai-etc.example.cn>`, 'etc利用照会'],
  ] as const) assert.ok((await symbols(from)).FROM_BRAND_MISMATCH?.includes(brand), `${from}: ${JSON.stringify(await symbols(from))}`);
  for (const from of [
    `${b64('三井住友カード')} <info@mail.smbc-card.com>`, `${b64('イオンカード')} <info@mail.aeon.co.jp>`, `${b64('楽天カード')} <info@mail.rakuten-card.co.jp>`,
    `${b64('山田太郎')} <taro@example.jp>`, `${b64('イオンモール')} <info@aeonmall.example.com>`,
  ]) assert.ok(!('FROM_BRAND_MISMATCH' in await symbols(from)), from);
});

test('look-alike characters in the display name: FROM_NAME_HOMOGLYPH and the brand found behind them', async () => {
  const s = await symbols('"BIueCross Ins. PoIicy" <BIueCrossInsPoIicy@multiplybkk.com>');
  assert.ok('FROM_NAME_HOMOGLYPH' in s && 'FROM_BRAND_MISMATCH' in s, JSON.stringify(s));
  assert.ok('FROM_NAME_HOMOGLYPH' in await symbols('Amaz0n <x@evil.example.net>'));
  assert.ok('FROM_NAME_HOMOGLYPH' in await symbols('=?UTF-8?B?UGF50KBhbA==?= <x@evil.example.net>'), 'Cyrillic а in PayPal');
  assert.equal(unmask('BIueCross PoIicy'), 'BlueCross Policy');
  assert.equal(unmask('IBM Ireland'), 'IBM Ireland', 'a real capital I stays');
  assert.ok(!('FROM_NAME_HOMOGLYPH' in await symbols('Ian McIntosh <ian@example.net>')));
});

test('our domain or another address in the display name', async () => {
  assert.ok('FROM_NAME_OUR_DOMAIN' in await symbols('"example.org IT helpdesk" <it@mailbox-upgrade.example.net>'));
  assert.deepEqual(await symbols('"example.org IT helpdesk" <it@example.org>'), {}, 'mail from our own domain is left to sender ownership');
  assert.match((await symbols('"support@paypal.com" <x@evil.example.net>')).FROM_NAME_ADDRESS_DIFF ?? '', /support@paypal\.com/);
  assert.ok(!('FROM_NAME_ADDRESS_DIFF' in await symbols('"jane@example.net" <jane@mail.example.net>')), 'the same registrable domain');
});

test('look-alike domains in From and in links, not the real ones nor unrelated names', async () => {
  assert.match((await symbols('Billing <billing@paypa1.com>')).FROM_LOOKALIKE_DOMAIN ?? '', /imitates paypal/);
  assert.ok('FROM_LOOKALIKE_DOMAIN' in await symbols('IT <it@exarnple.org>'), 'rn for m, against our own domain');
  assert.ok('FROM_LOOKALIKE_DOMAIN' in await symbols('Docs <docs@docusgin.com>'), 'two letters swapped');
  assert.ok('LINK_LOOKALIKE_DOMAIN' in await symbols('News <n@shop.example.net>', '<a href="https://micros0ft.com/login">sign in</a>'));
  assert.deepEqual(await symbols('News <n@shop.example.net>', '<a href="https://www.microsoft.com/">ms</a> <a href="https://paypal.co.uk/">pp</a>'), {});
  assert.deepEqual(await symbols('Jo <jo@google-fan.example.net>'), {}, 'a hyphenated name is not one edit away');
  assert.equal(editDistanceAtMostOne('paypal', 'paypa'), true);
  assert.equal(editDistanceAtMostOne('paypal', 'paypal'), false);
  assert.equal(editDistanceAtMostOne('amazon', 'amzaon'), true);
  assert.equal(editDistanceAtMostOne('amazon', 'amazing'), false);
});

test('no From, an unparsable From and a hostile long display name give nothing and stay fast', async () => {
  const raw = Buffer.from('To: a@example.org\r\nSubject: t\r\n\r\nx\r\n');
  assert.equal(((await check.run({ message: bufferModel(raw, { maxScanBytes: 1 << 20 }), conn: conn(), facts: {} } as never)).symbols ?? []).length, 0);
  assert.deepEqual(await symbols('undisclosed'), {});
  const t = Date.now();
  await symbols(`"${'PayPaI '.repeat(5000)}" <x@evil.example.net>`);
  assert.ok(Date.now() - t < 2000);
});

test('LINK_RECIPIENT_FRAGMENT: the recipient after # (plain, encoded, base64), never in a query string', async () => {
  const run = async (href: string, rcpt = 'alice@example.org') => {
    const raw = Buffer.from(`From: IT <it@example.net>\r\nTo: a@example.org\r\nSubject: t\r\nContent-Type: text/html\r\n\r\n<a href="${href}">open</a>\r\n`);
    const r = await check.run({ message: bufferModel(raw, { maxScanBytes: 1 << 20 }), envelope: { sender: 'it@example.net', recipients: [rcpt] }, conn: conn(), facts: {} } as never);
    return (r.symbols ?? []).map((s) => s.name);
  };
  assert.deepEqual(await run('https://kit.example.net/o365/#alice@example.org'), ['LINK_RECIPIENT_FRAGMENT']);
  assert.deepEqual(await run('https://kit.example.net/#alice%40example.org'), ['LINK_RECIPIENT_FRAGMENT']);
  assert.deepEqual(await run(`https://kit.example.net/x#${Buffer.from('alice@example.org').toString('base64')}`), ['LINK_RECIPIENT_FRAGMENT']);
  assert.deepEqual(await run('https://kit.example.net/#a@example.org', 'nobody@example.org'), ['LINK_RECIPIENT_FRAGMENT'], 'the To: address counts too');
  assert.deepEqual(await run('https://news.example.net/unsubscribe?email=alice%40example.org'), []);
  assert.deepEqual(await run('https://news.example.net/page#top'), []);
});

test('a link host first seen in its own sender\'s mail is still a look-alike in another sender\'s', async () => {
  const fresh = impersonationCheck({ ownDomains: ['example.org'] });
  const run = async (from: string) => {
    const raw = Buffer.from(`From: ${from}\r\nTo: a@example.org\r\nSubject: t\r\nContent-Type: text/html\r\n\r\n<a href="https://login.paypa1.com/">x</a>\r\n`);
    const r = await fresh.run({ message: bufferModel(raw, { maxScanBytes: 1 << 20 }), conn: conn(), facts: {} } as never);
    return (r.symbols ?? []).map((s) => s.name);
  };
  assert.deepEqual(await run('Billing <billing@paypa1.com>'), ['FROM_LOOKALIKE_DOMAIN'], 'a link to the sender\'s own domain is not counted twice');
  assert.deepEqual(await run('News <news@shop.example.net>'), ['LINK_LOOKALIKE_DOMAIN']);
});

test('display names are read through the same look-alike table as link hosts (uri/host.ts)', async () => {
  assert.equal(unmask('Neтflix'), 'Netflix');
  assert.ok('FROM_NAME_HOMOGLYPH' in await symbols('Neтflix <info@evil.example.net>'));
});
