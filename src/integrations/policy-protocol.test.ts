import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAnswer, MAX_ATTRIBUTES, MAX_LINE, MAX_REQUEST, PolicyOverflow, PolicyReader } from './policy-protocol.js';

const req = (lines: string[]) => Buffer.from(`${lines.join('\n')}\n\n`);

test('requests end at the empty line; several in one chunk, one split over many', () => {
  const r = new PolicyReader();
  const two = Buffer.concat([req(['request=smtpd_access_policy', 'protocol_state=RCPT', 'sender=a@b.example']), req(['request=smtpd_access_policy', 'sender='])]);
  const got = r.push(two);
  assert.equal(got.length, 2);
  assert.equal(got[0]!.attrs.get('sender'), 'a@b.example');
  assert.equal(got[1]!.attrs.get('sender'), '', 'an empty value is a value (the null sender)');
  assert.equal(r.partial, false);
  const bytes = req(['request=smtpd_access_policy', 'client_address=192.0.2.1']);
  const out = [];
  for (const b of bytes) out.push(...r.push(Buffer.from([b])));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.attrs.get('client_address'), '192.0.2.1');
});

test('CR LF line ends (a hand-typed request) read as LF; a value keeps its "=" signs', () => {
  const [one] = new PolicyReader().push(Buffer.from('request=smtpd_access_policy\r\nccert_subject=CN=x=y\r\n\r\n'));
  assert.equal(one!.attrs.get('request'), 'smtpd_access_policy');
  assert.equal(one!.attrs.get('ccert_subject'), 'CN=x=y');
});

test('malformed lines and repeated names make the request malformed, the connection goes on', () => {
  const r = new PolicyReader();
  const [bad, dup, good] = r.push(Buffer.concat([req(['request=smtpd_access_policy', 'no equals sign here']), req(['sender=a', 'sender=b']), req(['request=smtpd_access_policy'])]));
  assert.match(bad!.malformed!, /not an attribute line/);
  assert.match(dup!.malformed!, /sender given twice/);
  assert.equal(good!.malformed, undefined);
});

test('past a bound the reader throws: a long line, too many attributes, a long request', () => {
  assert.throws(() => new PolicyReader().push(Buffer.alloc(MAX_LINE + 2, 0x61)), PolicyOverflow);
  assert.throws(() => new PolicyReader().push(Buffer.from(`sender=${'a'.repeat(MAX_LINE)}\n`)), PolicyOverflow);
  const many = Array.from({ length: MAX_ATTRIBUTES + 1 }, (_, i) => `a${i}=x`);
  assert.throws(() => new PolicyReader().push(req(many)), /more than 128 attributes/);
  const long = new PolicyReader();
  const line = Buffer.from(`x=${'b'.repeat(MAX_LINE - 10)}\n`);
  assert.throws(() => {
    for (let i = 0; i * line.length <= MAX_REQUEST + line.length; i++) long.push(Buffer.from(line.toString().replace('x=', `x${i}=`)));
  }, /a request longer than 65536 bytes/);
});

test('an answer is one action line and the empty line; control characters cannot end it early', () => {
  assert.equal(formatAnswer('DUNNO'), 'action=DUNNO\n\n');
  assert.equal(formatAnswer('550 5.7.1 bad\n\naction=OK'), 'action=550 5.7.1 bad action=OK\n\n');
});
