import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_VALUE, parseValue, renderTxt, type ZoneValue } from './template.js';
import { formatIp4 } from './ip4.js';

function value(s: string, def: ZoneValue = { a: 0x7f000009, txt: 'default $' }): string {
  const b = Buffer.from(s, 'latin1');
  const v = parseValue(b, 0, b.length, def);
  return typeof v === 'string' ? `error: ${v}` : `${formatIp4(v.a)} [${v.txt}]`;
}

test('the value forms of the rbldnsd manual', () => {
  assert.equal(value(':127.0.0.2:Blacklisted: http://example.com/bl?$'), '127.0.0.2 [Blacklisted: http://example.com/bl?$]');
  assert.equal(value(':2:Blacklisted'), '127.0.0.2 [Blacklisted]');
  assert.equal(value(':5'), '127.0.0.5 [default $]'); // A only: TXT from the default
  assert.equal(value(':6:'), '127.0.0.6 []'); // A only, no TXT
  assert.equal(value('IP address $ running an open relay'), '127.0.0.9 [IP address $ running an open relay]');
  assert.equal(value(':1.2:x'), '1.0.0.2 [x]');
  assert.equal(value(':8 \t:\t tabs'), '127.0.0.8 [tabs]');
  assert.equal(value(':9: # kept'), '127.0.0.9 [# kept]');
  assert.equal(value(`:2:${'y'.repeat(300)}`), `127.0.0.2 [${'y'.repeat(255)}]`);
  assert.equal(value(':5', DEFAULT_VALUE), '127.0.0.5 []');
});

test('invalid values are refused with a reason', () => {
  assert.match(value(':0:zero'), /^error: invalid A/);
  assert.match(value(':300:x'), /^error: invalid A/);
  assert.match(value('::x'), /^error: invalid A/);
  assert.match(value(':2 junk'), /^error: unrecognized/);
});

const none = { vars: [], base: undefined };

test('TXT substitution: $, $$, $n and undefined variables', () => {
  const vars = { vars: [undefined, 'See http://www.example.com/bl', 'for details'], base: undefined };
  // The manual's own example.
  assert.equal(renderTxt('$1/spammer/$ $2', '127.0.0.2', vars), 'See http://www.example.com/bl/spammer/127.0.0.2 for details');
  assert.equal(renderTxt('This spammer wants some $$$$.  $1/$', '127.0.0.4', vars), 'This spammer wants some $$.  See http://www.example.com/bl/127.0.0.4');
  assert.equal(renderTxt('undefined $3 and $0 stay', '1.2.3.4', vars), 'undefined $3 and $0 stay');
  assert.equal(renderTxt('ends with $', '1.2.3.4', none), 'ends with 1.2.3.4');
  assert.equal(renderTxt('$x', '1.2.3.4', none), '1.2.3.4x');
  assert.equal(renderTxt('', '1.2.3.4', none), '');
  assert.equal(renderTxt('no dollar', '1.2.3.4', none), 'no dollar');
});

test('base template: "$=" is the entry text as written, "=" opts out', () => {
  const subst = { vars: [undefined, 'V1'], base: 'See http://www.example.com/bl?$= ($) for details' };
  // The manual's example.
  assert.equal(renderTxt('r123', '127.0.0.2', subst), 'See http://www.example.com/bl?r123 (127.0.0.2) for details');
  assert.equal(renderTxt('', '127.0.0.3', subst), 'See http://www.example.com/bl?127.0.0.3 (127.0.0.3) for details');
  assert.equal(renderTxt('=See other blocklists for details about $', '127.0.0.4', subst), 'See other blocklists for details about 127.0.0.4');
  // The entry's own text is not expanded inside the base (as rbldnsd).
  assert.equal(renderTxt('tmpl $1 $', '1.1.1.1', { ...subst, base: '[$=] $' }), '[tmpl $1 $] 1.1.1.1');
  assert.equal(renderTxt('=', '1.1.1.1', subst), '');
});

test('expanded text is cut at 254 bytes', () => {
  const long = renderTxt('$1$1$1$1$1 $', '10.0.0.1', { vars: [undefined, 'z'.repeat(60)], base: undefined });
  assert.equal(long.length, 254);
  assert.equal(renderTxt('q'.repeat(255), 'x', none).length, 254);
});
