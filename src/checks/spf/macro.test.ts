import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindDomainMacro, dottedIp, expandMacros, MacroError, type MacroContext } from './macro.js';

const ctx = (ip: string, over: Partial<MacroContext> = {}): MacroContext => ({
  sender: 'strong-bad@email.example.com', ip, domain: 'email.example.com', helo: 'mx.example.org',
  receiver: 'mx.receiver.example', now: () => 1_700_000_000_000, validatedName: () => Promise.resolve('mx.example.org'),
  ...over,
});

// The examples of RFC 7208 s7.4.
test('RFC 7208 s7.4 examples', async () => {
  const v4 = ctx('192.0.2.3');
  const cases: [string, string][] = [
    ['%{s}', 'strong-bad@email.example.com'],
    ['%{o}', 'email.example.com'],
    ['%{d}', 'email.example.com'],
    ['%{d4}', 'email.example.com'],
    ['%{d3}', 'email.example.com'],
    ['%{d2}', 'example.com'],
    ['%{d1}', 'com'],
    ['%{dr}', 'com.example.email'],
    ['%{d2r}', 'example.email'],
    ['%{l}', 'strong-bad'],
    ['%{l-}', 'strong.bad'],
    ['%{lr}', 'strong-bad'],
    ['%{lr-}', 'bad.strong'],
    ['%{l1r-}', 'strong'],
    ['%{ir}.%{v}._spf.%{d2}', '3.2.0.192.in-addr._spf.example.com'],
    ['%{lr-}.lp._spf.%{d2}', 'bad.strong.lp._spf.example.com'],
    ['%{lr-}.lp.%{ir}.%{v}._spf.%{d2}', 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com'],
    ['%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}', '3.2.0.192.in-addr.strong.lp._spf.example.com'],
    ['%{d2}.trusted-domains.example.net', 'example.com.trusted-domains.example.net'],
  ];
  for (const [macro, want] of cases) assert.equal(await expandMacros(macro, v4, false), want, macro);
  assert.equal(await expandMacros('%{ir}.%{v}._spf.%{d2}', ctx('2001:db8::cb01'), false),
    '1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com');
});

test('explanation letters, escapes and URL-encoding of upper-case letters', async () => {
  const c = ctx('2001:DB8::CB01', { sender: '~jack&jill=up-a_b3.c@example.com' });
  assert.equal(await expandMacros('%{c} %{r} %{t}', c, true), '2001:db8::cb01 mx.receiver.example 1700000000');
  assert.equal(await expandMacros('l=%{L} %% %_ %-', c, true), 'l=~jack%26jill%3Dup-a_b3.c %   %20');
  assert.equal(await expandMacros('from %{p}', c, true), 'from mx.example.org');
  await assert.rejects(expandMacros('%{c}.example.com', c, false), MacroError);
  await assert.rejects(expandMacros('%{x}', c, true), MacroError);
  await assert.rejects(expandMacros('50%', c, true), MacroError);
  await assert.rejects(expandMacros('%{d0}', c, false), MacroError);
  assert.equal(dottedIp('CAFE:BABE::1'), 'C.A.F.E.B.A.B.E.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1');
  assert.equal(dottedIp('::ffff:192.0.2.1'), '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.c.0.0.0.0.2.0.1');
});

test('an expanded domain name over 253 octets loses labels on the left', async () => {
  const long = 'somewhat.long.exp.example.com';
  const out = await expandMacros('foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com', ctx('192.0.2.1', { sender: `x@${long}` }), false);
  assert.ok(out.length <= 253);
  assert.ok(out.endsWith(`${long}.example.com`));
  assert.ok(out.startsWith('somewhat.'), 'whole labels are removed');
});

test('%{d} is bound to the domain a record belongs to, other macros are left alone', () => {
  assert.equal(bindDomainMacro('v=spf1 exists:%{i}.%{d}.x.test -all', 'b.example'), 'v=spf1 exists:%{i}.b.example.x.test -all');
  assert.equal(bindDomainMacro('v=spf1 exists:%{d2r}.%{D1}.x.test', 'a.b.example'), 'v=spf1 exists:b.a.example.x.test');
  assert.equal(bindDomainMacro('v=spf1 a:%%{d}.x.test', 'b.example'), 'v=spf1 a:%%{d}.x.test', '%% is a literal percent');
  assert.equal(bindDomainMacro('v=spf1 -all', 'b.example'), 'v=spf1 -all');
  assert.equal(bindDomainMacro('v=spf1 a:%{d}.x', 'we%ird.example'), 'v=spf1 a:%{d}.x', 'a domain with "%" is not substituted');
});
