import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSpfRecord, parseSpfRecord, selectSpfRecords } from './record.js';

const ok = (r: string) => {
  const p = parseSpfRecord(r);
  assert.ok(p.ok, `${r}: ${p.ok ? '' : p.error}`);
  return p.record;
};
const bad = (r: string, why: RegExp) => {
  const p = parseSpfRecord(r);
  assert.equal(p.ok, false, `${r} must be a syntax error`);
  if (!p.ok) assert.match(p.error, why, r);
};

test('a real-world record parses into its terms', () => {
  const r = ok('v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.org/28//64 include:_spf.example.net ~all exp=why.%{d}');
  assert.deepEqual(r.mechanisms.map((m) => `${m.qualifier}${m.name}`), ['+ip4', '+ip6', '+a', '+mx', '+include', '~all']);
  assert.equal(r.mechanisms[0]!.cidr4, 24);
  assert.equal(r.mechanisms[3]!.domainSpec, 'mail.example.org');
  assert.equal(r.mechanisms[3]!.cidr6, 64);
  assert.equal(r.exp, 'why.%{d}');
  assert.equal(ok('V=SpF1 -ALL').mechanisms[0]!.name, 'all');
  assert.equal(ok('v=spf1  a   -all ').mechanisms.length, 2, 'several spaces, a trailing space');
  assert.equal(ok('v=spf1').mechanisms.length, 0);
});

test('syntax errors anywhere in the record (RFC 7208 s4.6)', () => {
  bad('v=spf1 -all ip6', /ip6 needs/);
  bad('v=spf1 -all moo', /unknown mechanism/);
  bad('v=spf1 -all exp=a.example exp=b.example', /twice/);
  bad('v=spf1 redirect=a.example redirect=b.example', /twice/);
  bad('v=spf1 -all exp=%{r}.example.com', /not allowed/);
  bad('v=spf1 a:%{c}.example.com', /not allowed/);
  bad('v=spf1 ip4:1.2.3.4/33', /CIDR/);
  bad('v=spf1 ip4:01.2.3.4', /ip4 network/);
  bad('v=spf1 ip4:1.2.3.4//32', /dual CIDR/);
  bad('v=spf1 a:example.123', /top label/);
  bad('v=spf1 include:', /domain-spec/);
  bad('v=spf1 a:foo\u0000', /0x00/);
  bad('v=spf1 foo=%abc', /invalid macro/);
  bad('v=spf10', /v=spf1/);
});

test('unknown modifiers may use every macro letter; known ones are checked', () => {
  assert.equal(ok('v=spf1 moo.cow-far_out=man:dog/cat -all').terms.length, 2);
  ok('v=spf1 foo=%{c}%{r}%{t} -all');
  ok('v=spf1 a:%{H} -all');
  ok('v=spf1 include:o.spf.example.com. -all');
});

test('selecting the SPF record among TXT records', () => {
  assert.deepEqual(selectSpfRecords([['v=spf1 ', 'a -all'], ['google-site-verification=x'], ['v=spf10 x']]), ['v=spf1 a -all']);
  assert.equal(isSpfRecord('v=spf1'), true);
  assert.equal(isSpfRecord(' v=spf1 a'), false);
  assert.equal(isSpfRecord('v=spf1mx'), false);
});
