import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyHostName, compileDynamicPatterns, hostPart } from './dynamic-name.js';

// Fixture: [PTR name, client address, expected rule or null]. Real-world shapes of access-line names.
const fixtures: [string, string, 'address' | 'word' | null][] = [
  // The address written in the name.
  ['c-73-12-34-56.hsd1.ca.comcast.net', '73.12.34.56', 'address'],
  ['pool-71-105-20-30.bstnma.fios.verizon.net', '71.105.20.30', 'address'],
  ['ec2-54-1-2-3.compute-1.amazonaws.com', '54.1.2.3', 'address'],
  ['ip-10-0-0-1.ec2.internal', '10.0.0.1', 'address'],
  ['host86-128-1-2.range86-128.btcentralplus.com', '86.128.1.2', 'address'],
  ['4.3.2.1.rev.example.net', '1.2.3.4', 'address'],
  ['1.2.3.4.static.example.net', '1.2.3.4', 'address'],
  ['static-1-2-3-4.example.net', '1.2.3.4', 'address'],
  ['abc001002003004.example.net', '1.2.3.4', 'address'],
  ['h-001-002-003-004.example.net', '1.2.3.4', 'address'],
  ['dhcp_192_168_1_20.example.net', '192.168.1.20', 'address'],
  ['c0a80114.example.net', '192.168.1.20', 'address'],
  ['x-C0A80114.example.net', '192.168.1.20', 'address'],
  ['1401a8c0.example.net', '192.168.1.20', 'address'],
  ['static.89.67.45.123.clients.your-server.de', '123.45.67.89', 'address'],
  ['2001-db8--25.dyn6.example.net', '2001:db8::25', 'address'],
  ['p2a02-8108-1234-5678-1.example.net', '2a02:8108:1234:5678::1', 'address'],
  ['2a0281081234567800000000000000aa.example.net', '2a02:8108:1234:5678::aa', 'address'],
  // Access-line words, alone.
  ['dsl-brd-customer.example.mx', '198.51.100.7', 'word'],
  ['adsl123.example.net', '198.51.100.7', 'word'],
  ['ppp-home.otenet.example', '198.51.100.7', 'word'],
  ['abc.dyn.example.net', '198.51.100.7', 'word'],
  ['cable-x.example.nl', '198.51.100.7', 'word'],
  ['cpe-austin.res.rr.com', '198.51.100.7', 'word'],
  ['bb.dhcp.example.co.uk', '198.51.100.7', 'word'],
  // Weak words need two of the octets.
  ['cust-100-7.example.net', '198.51.100.7', 'word'],
  ['host-7.100.example.net', '198.51.100.7', 'word'],
  ['user-7.example.net', '198.51.100.7', null],
  ['host1.example.org', '198.51.100.1', null],
  ['client.example.org', '198.51.100.7', null],
  // Mail servers and legitimate names.
  ['mail.example.org', '198.51.100.7', null],
  ['mx1.mail.example.co.uk', '198.51.100.7', null],
  ['mail-qk1-f182.google.com', '209.85.222.182', null],
  ['a27-45.smtp-out.amazonses.com', '54.240.27.45', null],
  ['mail-db8eur05on2090.outbound.protection.outlook.com', '40.107.1.90', null],
  ['o1.ptr1234.sendgrid.net', '198.51.100.7', null],
  // The registered domain is not a label word: Dyn, a cable company, "pool.ntp"-like names.
  ['mail.dyn.com', '198.51.100.7', null],
  ['smtp.cable.co.uk', '198.51.100.7', null],
  // "static" alone is not dynamic (docs/rdns-helo.md).
  ['static.example.net', '198.51.100.7', null],
  ['mail.static-host.example.net', '198.51.100.7', null],
  // Another address in the name is not this client's.
  ['c-73-12-34-57.hsd.example.net', '73.12.34.56', 'word'],
  ['srv-73-12-34-57.example.net', '73.12.34.56', null],
  ['srv-173-12-34-56.example.net', '73.12.34.56', null],
];

for (const [name, ip, rule] of fixtures) {
  test(`dynamic-name: ${name} (${ip}) → ${rule ?? 'not dynamic'}`, () => {
    const v = classifyHostName(name, ip);
    assert.equal(v.dynamic ? v.rule : null, rule, JSON.stringify(v));
  });
}

test('dynamic-name: the detail says why', () => {
  assert.deepEqual(classifyHostName('C-73-12-34-56.HSD1.example.net.', '73.12.34.56'),
    { dynamic: true, rule: 'address', detail: 'the address is in the name (decimal, in order)' });
  assert.deepEqual(classifyHostName('4.3.2.1.example.net', '1.2.3.4'),
    { dynamic: true, rule: 'address', detail: 'the address is in the name (decimal, reversed)' });
  assert.deepEqual(classifyHostName('x.pool.example.net', '1.2.3.4'), { dynamic: true, rule: 'word', detail: 'label word "pool"' });
  assert.deepEqual(classifyHostName('cust-3-4.example.net', '1.2.3.4'),
    { dynamic: true, rule: 'word', detail: 'label word "cust" with octets 3, 4 of the address' });
});

test('dynamic-name: operator patterns, case-insensitive, on the whole name', () => {
  const patterns = compileDynamicPatterns(['^mta\\d+\\.bulk\\.', 'HOMEUSER']);
  assert.deepEqual(classifyHostName('mta7.bulk.example.net', '198.51.100.7', patterns),
    { dynamic: true, rule: 'pattern', detail: 'pattern /^mta\\d+\\.bulk\\./' });
  assert.equal(classifyHostName('a.homeuser.example.net', '198.51.100.7', patterns).dynamic, true);
  assert.equal(classifyHostName('mail.example.net', '198.51.100.7', patterns).dynamic, false);
  assert.throws(() => compileDynamicPatterns(['ok', '(unclosed']), /rdns\.dynamic_patterns\[1\]: "\(unclosed" is not a regular expression/);
});

test('dynamic-name: the host part leaves out the registered domain', () => {
  assert.equal(hostPart('a.b.example.org'), 'a.b');
  assert.equal(hostPart('a.b.example.co.uk'), 'a.b');
  assert.equal(hostPart('example.org'), '');
  assert.equal(hostPart('mail.example.de'), 'mail');
});
