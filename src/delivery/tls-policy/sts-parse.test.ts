import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mxMatches, parseStsPolicy, parseStsRecord, MAX_AGE_LIMIT } from './sts-parse.js';

test('the _mta-sts TXT record: exactly one v=STSv1 record with an id of 1-32 letters and digits', () => {
  assert.deepEqual(parseStsRecord(['v=STSv1; id=20160831085700Z;']), { ok: true, value: { id: '20160831085700Z' } });
  assert.deepEqual(parseStsRecord(['v=spf1 -all', 'v=STSv1;id=abc']), { ok: true, value: { id: 'abc' } });
  assert.deepEqual(parseStsRecord(['v=STSv1; id=abc; ext=1']), { ok: true, value: { id: 'abc' } });
  for (const bad of [[], ['v=spf1 -all'], ['v=STSv1; id=a', 'v=STSv1; id=b'], ['v=STSv1'], ['v=STSv1; id=a-b'],
    ['v=STSv1; id=' + 'a'.repeat(33)], ['v=STSv1; id=a; id=b'], ['v=STSv1; id']]) {
    assert.equal(parseStsRecord(bad).ok, false, JSON.stringify(bad));
  }
});

test('a policy file is parsed with CRLF or LF, unknown keys ignored, mx patterns lower-cased', () => {
  const r = parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: MX1.Example.com.\r\nmx: *.example.net\r\nmax_age: 604800\r\nfuture: yes\r\n');
  assert.ok(r.ok);
  assert.equal(r.value.mode, 'enforce');
  assert.deepEqual(r.value.mx, ['mx1.example.com', '*.example.net']);
  assert.equal(r.value.maxAge, 604800);
  assert.equal(r.value.lines.length, 6);
  const none = parseStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n');
  assert.ok(none.ok && none.value.mode === 'none' && none.value.mx.length === 0);
  assert.ok(parseStsPolicy(`version: STSv1\nmode: testing\nmx: a.b\nmax_age: ${MAX_AGE_LIMIT}`).ok);
});

test('a policy that is not exactly RFC 8461 3.2 is refused with the reason', () => {
  const cases: [string, RegExp][] = [
    ['mode: enforce\nmx: a.b\nmax_age: 1', /no version/],
    ['version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1', /not STSv1/],
    ['version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1', /mode "strict"/],
    ['version: STSv1\nmode: enforce\nmx: a.b', /no max_age/],
    [`version: STSv1\nmode: enforce\nmx: a.b\nmax_age: ${MAX_AGE_LIMIT + 1}`, /max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -5', /max_age/],
    ['version: STSv1\nmode: enforce\nmax_age: 60', /without any mx/],
    ['version: STSv1\nmode: enforce\nmx: *.*.b.c\nmax_age: 60', /is not a host name/],
    ['version: STSv1\nmode: enforce\nmx: a.*.c\nmax_age: 60', /is not a host name/],
    ['version: STSv1\nmode: enforce\nmode: testing\nmx: a.b\nmax_age: 60', /given twice/],
    ['<html><body>Not found</body></html>', /malformed line/],
    ['version STSv1\nmode: enforce\nmx: a.b\nmax_age: 60', /malformed line/],
  ];
  for (const [text, why] of cases) {
    const r = parseStsPolicy(text);
    assert.equal(r.ok, false, text);
    if (!r.ok) assert.match(r.reason, why, text);
  }
});

test('mx patterns: exact names, and a wildcard for exactly one leftmost label (RFC 8461 4.1)', () => {
  const p = ['mail.example.com', '*.example.net'];
  assert.equal(mxMatches(p, 'mail.example.com'), true);
  assert.equal(mxMatches(p, 'MAIL.example.com.'), true);
  assert.equal(mxMatches(p, 'mx1.example.net'), true);
  assert.equal(mxMatches(p, 'example.net'), false);
  assert.equal(mxMatches(p, 'a.b.example.net'), false);
  assert.equal(mxMatches(p, 'other.example.com'), false);
  assert.equal(mxMatches(p, 'xexample.net'), false);
});
