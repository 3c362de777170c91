import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseZone, parseZoneAsync, type LoadedZone, type MalformedLine, type ZoneType } from './zone.js';
import { FatalZoneLine } from './specials.js';

function load(type: ZoneType, text: string, extra: { fileTime?: number; now?: number } = {}): { zone: LoadedZone; bad: MalformedLine[] } {
  const bad: MalformedLine[] = [];
  const zone = parseZone(Buffer.from(text, 'latin1'), { type, file: '/zones/test.zone', defaultTtl: 2100, onMalformed: (m) => bad.push(m), ...extra });
  return { zone, bad };
}

/** "A…|TXT…" of a relative name, or "-" when not listed. */
function ask(zone: LoadedZone, rel: string): string {
  const hit = zone.lookup(rel);
  if (!hit) return '-';
  return [...zone.aRecords(hit), ...zone.txtRecords(hit).map((t) => `"${t}"`)].join(' ');
}

test('malformed lines are reported with file, line, text and reason, and skipped', () => {
  const { zone, bad } = load('ip4set', ['1.2.3.4', 'garbage line', '300.1.2.3', '1.2.3.4/24', '', '# comment', '5.6.7.8 :0:x', '$FOO', '9.9.9.9'].join('\n'));
  assert.deepEqual(
    bad.map((b) => `${b.file}:${b.line}: ${b.text} (${b.reason})`),
    [
      '/zones/test.zone:2: garbage line (invalid address)',
      '/zones/test.zone:3: 300.1.2.3 (invalid address)',
      '/zones/test.zone:4: 1.2.3.4/24 (invalid range (non-zero host part))',
      '/zones/test.zone:7: 5.6.7.8 :0:x (invalid A value)',
      '/zones/test.zone:8: $FOO (unrecognized special entry)',
    ],
  );
  assert.equal(zone.entries, 2);
  assert.equal(zone.malformed, 5);
  assert.equal(zone.lines, 9);
  assert.equal(ask(zone, '4.3.2.1'), '127.0.0.2');
  assert.equal(ask(zone, '9.9.9.9'), '127.0.0.2');
  assert.equal(ask(zone, '8.7.6.5'), '-');
});

test('comments, blank lines, "#$"/":$" specials, CRLF line ends and a last line without newline', () => {
  const { zone, bad } = load('ip4set', '# c\r\n; c\r\n  \t\r\n#$TTL 60\r\n:$TTL 70\r\n;$ 1 x\r\n1.2.3.4 ; c\r\n1.2.3.5# c\r\n  1.2.3.6  \r\n1.2.3.7');
  assert.deepEqual(bad.map((b) => b.line), [6]);
  assert.equal(zone.ttl, 70);
  for (const a of ['4', '5', '6', '7']) assert.equal(ask(zone, `${a}.3.2.1`), '127.0.0.2', a);
});

test('ip4set: defaults change for the lines after them, entries carry their own values', () => {
  const { zone } = load(
    'ip4set',
    `$1 http://bl.example/q
:127.0.0.2:Listed $ see $1?ip=$
10.0.0.0/8 :3:Ten net $
10.1.2.5 :5
10.1.2.6 :6:
10.1.2.7 custom $$ $9
:9:new default
20.0.0.1
20.0.0.2 :2
`,
  );
  assert.equal(ask(zone, '1.0.0.10'), '127.0.0.3 "Ten net 10.0.0.1"');
  assert.equal(ask(zone, '5.2.1.10'), '127.0.0.5 "Listed 10.1.2.5 see http://bl.example/q?ip=10.1.2.5"');
  assert.equal(ask(zone, '6.2.1.10'), '127.0.0.6');
  assert.equal(ask(zone, '7.2.1.10'), '127.0.0.2 "custom $ $9"');
  assert.equal(ask(zone, '1.0.0.20'), '127.0.0.9 "new default"');
  assert.equal(ask(zone, '2.0.0.20'), '127.0.0.2 "new default"');
});

test('ip4set: $MAXRANGE4 refuses larger ranges', () => {
  const { zone, bad } = load('ip4set', '$MAXRANGE4 /16\n10.0.0.0/8\n10.1.0.0/16\n11.0.0.0-11.1.0.0\n');
  assert.deepEqual(bad.map((b) => b.line), [2, 4]);
  assert.equal(ask(zone, '1.0.1.10'), '127.0.0.2');
  assert.equal(ask(zone, '1.0.2.10'), '-');
});

test('ip4 zones answer 6to4 and IPv4-mapped nibble names for the embedded IPv4 address', () => {
  const { zone } = load('ip4set', '10.1.2.3 :3:v4 $\n');
  const sixToFour = '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.2.0.1.0.a.0.2.0.0.2'; // 2002:a01:203::
  const mapped = '3.0.2.0.1.0.a.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0'; // ::ffff:a01:203
  assert.equal(ask(zone, sixToFour), '127.0.0.3 "v4 10.1.2.3"');
  assert.equal(ask(zone, mapped), '127.0.0.3 "v4 10.1.2.3"');
  assert.equal(ask(zone, sixToFour.replace(/2$/, '3')), '-');
});

test('ip4tset: the first default wins, values and exclusions are not part of the format', () => {
  const { zone, bad } = load('ip4tset', ':127.0.0.5:tset $\n:6:ignored\n192.0.2.1\n192.0.2.2 :9:ignored\n192.0.2.0/24\n198.51.100\n!192.0.2.1\n');
  assert.deepEqual(bad.map((b) => `${b.line} ${b.reason}`), ['5 invalid address', '6 invalid address', '7 invalid address']);
  assert.equal(ask(zone, '1.2.0.192'), '127.0.0.5 "tset 192.0.2.1"');
  assert.equal(ask(zone, '2.2.0.192'), '127.0.0.5 "tset 192.0.2.2"');
  assert.equal(ask(zone, '3.2.0.192'), '-');
  assert.equal(zone.entries, 2);
});

test('ip6tset: /64 entries, /128 exclusions, nibble names, compressed $ text', () => {
  const { zone, bad } = load('ip6tset', ':3:v6 $\n2001:db8:1:2\n2001:db8::\n!2001:db8:1:2::1\n!2001:db8:1:2/64\n2001:db8:1:3::/64\n');
  assert.deepEqual(bad.map((b) => b.line), [3, 5, 6]);
  assert.match(bad[0].reason, /should be 64 bits/);
  const n = (last: string) => `${last}.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2`;
  assert.equal(ask(zone, n('2')), '127.0.0.3 "v6 2001:db8:1:2::2"');
  assert.equal(ask(zone, n('1')), '-');
  assert.equal(ask(zone, n('2').slice(2)), '-');
});

test('dnset: names normalised and lowercased, "$" is the listed entry', () => {
  const { zone, bad } = load(
    'dnset',
    `:2:Domain $ listed
Mixed.Case.Test
*.wild.test :3:wild $
bad..name.test.
*.
.
esc\\046aped.test
${'l'.repeat(64)}.test
!*.no.wild.test
`,
  );
  assert.deepEqual(bad.map((b) => `${b.line} ${b.reason}`), [
    '5 invalid domain name',
    '6 invalid domain name',
    '7 domain name with "\\" escapes (not supported)',
    '8 invalid domain name',
  ]);
  assert.equal(ask(zone, 'mixed.case.test'), '127.0.0.2 "Domain mixed.case.test listed"');
  assert.equal(ask(zone, 'b.a.wild.test'), '127.0.0.3 "wild wild.test"');
  assert.equal(ask(zone, 'bad.name.test'), '127.0.0.2 "Domain bad.name.test listed"');
  assert.equal(zone.entries, 4);
});

test('specials reach the zone: $TTL, $SOA (serial 0 = file time), $NS, base template, expiry', () => {
  const { zone } = load('dnset', '$TTL 5m\n$SOA 0 ns.example hm.example 0 1h 1h 1d 10m\n$NS 1h ns.example\n$= [$=]\n$TIMESTAMP 2020:01:01 +1d\nx.test :2:t\n', { fileTime: 1700000000 });
  assert.equal(zone.ttl, 300);
  assert.equal(zone.soa?.serial, 1700000000);
  assert.equal(zone.soa?.ttl, 300);
  assert.deepEqual(zone.ns, { ttl: 3600, names: ['ns.example'] });
  assert.equal(ask(zone, 'x.test'), '127.0.0.2 "[t]"');
  assert.equal(zone.expired(Date.UTC(2020, 0, 1, 12)), false);
  assert.equal(zone.expired(Date.UTC(2020, 0, 3)), true);
  assert.equal(load('dnset', 'x.test\n').zone.expired(Date.now()), false);
});

test('a $TIMESTAMP in the future refuses the whole file', () => {
  assert.throws(() => load('ip4set', '1.2.3.4\n$TIMESTAMP 2030:01:01\n', { now: Date.UTC(2024, 0, 1) }), FatalZoneLine);
});

test('parsing in slices gives the same zone as parsing at once', async () => {
  const lines = [':3:x $'];
  for (let i = 0; i < 5000; i++) lines.push(`10.${i >> 8}.${i & 255}.${i % 7}${i % 11 === 0 ? ' :4:y' : ''}`);
  const text = Buffer.from(lines.join('\n'));
  const opts = { type: 'ip4set' as const, file: 'f', defaultTtl: 60 };
  const whole = parseZone(text, opts);
  const sliced = await parseZoneAsync(text, opts, 7);
  assert.equal(sliced.entries, whole.entries);
  for (let i = 0; i < 5000; i += 37) {
    const rel = `${i % 7}.${i & 255}.${i >> 8}.10`;
    assert.equal(ask(sliced, rel), ask(whole, rel));
    assert.notEqual(ask(whole, rel), '-');
  }
});
