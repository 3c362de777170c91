import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseRegexLiteral, translatePerlRegex } from './perl-regex.js';
import { requiredLiterals } from './prefilter.js';

// Perl construct → expected behaviour on byte strings. Each case is also run through real Perl
// (below) so that the table itself is checked, not only our reading of perlre.
// \Q...\E is a string-interpolation feature: in a rule (a runtime pattern) Perl warns
// "unrecognized escape" and SpamAssassin rejects the rule; we quote, which is what the writer
// meant. Those cases are not compared with Perl.
const CASES: { re: string; flags?: string; s: string; match: boolean; why: string; notPerl?: boolean }[] = [
  { re: 'foo$', s: 'foo\n', match: true, why: '$ matches before a final newline' },
  { re: 'foo$', s: 'foo\nx', match: false, why: '$ without /m is not a line end' },
  { re: 'foo\\z', s: 'foo\n', match: false, why: '\\z is the very end' },
  { re: 'foo\\Z', s: 'foo\n', match: true, why: '\\Z allows a final newline' },
  { re: '\\Afoo', s: 'xfoo', match: false, why: '\\A is the start' },
  { re: '^b', flags: 'm', s: 'a\nb', match: true, why: '/m: ^ after a newline' },
  { re: '^b', s: 'a\nb', match: false, why: 'no /m: ^ only at the start' },
  { re: 'a$', flags: 'm', s: 'a\nb', match: true, why: '/m: $ before a newline' },
  { re: 'a.c', s: 'a\rc', match: true, why: 'Perl . matches \\r' },
  { re: 'a.c', s: 'a\nc', match: false, why: '. does not match \\n' },
  { re: 'a.c', flags: 's', s: 'a\nc', match: true, why: '/s: . matches \\n' },
  { re: 'a\\sb', s: 'a\xa0b', match: false, why: '\\s on bytes excludes NBSP' },
  { re: 'a\\sb', s: 'a\x0bb', match: true, why: '\\s includes VT (Perl 5.18+)' },
  { re: '[[:alpha:]]+\\d', s: 'abc1', match: true, why: 'POSIX class' },
  { re: '[[:^digit:]]', s: '123', match: false, why: 'negated POSIX class' },
  { re: '[[:upper:]]', flags: 'i', s: 'a', match: true, why: 'POSIX upper under /i' },
  { re: '(?>a+)b', s: 'aaab', match: true, why: 'atomic group' },
  { re: '(?>a+)ab', s: 'aaab', match: false, why: 'atomic group gives nothing back' },
  { re: 'a++b', s: 'aab', match: true, why: 'possessive +' },
  { re: 'a++ab', s: 'aaab', match: false, why: 'possessive + gives nothing back' },
  { re: '(x)a*+\\1', s: 'xaax', match: true, why: 'possessive keeps capture numbers' },
  { re: '\\Qa.b\\E', s: 'axb', match: false, why: '\\Q quotes .', notPerl: true },
  { re: '\\Qa.b\\E+', s: 'a.bb', match: true, why: '\\Q...\\E then a quantifier', notPerl: true },
  { re: 'a b # comment\n c', flags: 'x', s: 'abc', match: true, why: '/x strips spaces and comments' },
  { re: 'a\\ b', flags: 'x', s: 'a b', match: true, why: '/x keeps an escaped space' },
  { re: '[ ]x', flags: 'x', s: ' x', match: true, why: '/x keeps spaces in classes' },
  { re: '(?i)hello', s: 'HELLO', match: true, why: '(?i) at the start' },
  { re: 'x(?i:ab)y', s: 'xABy', match: true, why: '(?i:...) region' },
  { re: 'x(?i:ab)y', s: 'XABy', match: false, why: 'outside the region stays case-sensitive' },
  { re: 'a(?i)b', s: 'aB', match: true, why: '(?i) in the middle: rest of the group' },
  { re: '(?:a(?i)b)c', s: 'aBC', match: false, why: '(?i) ends with its group' },
  { re: 'a(?-i)b', flags: 'i', s: 'Ab', match: true, why: '(?-i) inside /i' },
  { re: 'a(?-i)b', flags: 'i', s: 'AB', match: false, why: '(?-i) makes the rest case-sensitive' },
  { re: '(?s:a.b)', s: 'a\nb', match: true, why: '(?s:...) region' },
  { re: '(?m)^b', s: 'a\nb', match: true, why: '(?m) at the start' },
  { re: 'x(?m:^b)', s: 'x\nb', match: false, why: '(?m:^) needs a newline before' },
  { re: 'a\\h+b', s: 'a \tb', match: true, why: '\\h' },
  { re: 'a\\Hb', s: 'a b', match: false, why: '\\H' },
  { re: 'a\\vb', s: 'a\fb', match: true, why: '\\v' },
  { re: 'a\\Rb', s: 'a\r\nb', match: true, why: '\\R' },
  { re: 'foo\\Kbar', s: 'foobar', match: true, why: '\\K only moves $&' },
  { re: '(a)(?<n>b)\\k<n>\\1', s: 'abba', match: true, why: 'named and numbered backreferences' },
  { re: '(a)\\g1\\g{-1}', s: 'aaa', match: true, why: '\\g backreferences' },
  { re: '(?P<x>a)(?P=x)', s: 'aa', match: true, why: 'Python-style named groups' },
  { re: '\\x41\\x{42}\\103\\cA', s: 'ABC\x01', match: true, why: 'hex, braced hex, octal, control' },
  { re: '[]a]', s: ']', match: true, why: '] first in a class is literal' },
  { re: '[^]a]', s: ']', match: false, why: 'negated class with a leading ]' },
  { re: '[a\\-z]', s: '-', match: true, why: 'escaped - in a class' },
  { re: '[\\w.-]+@', s: 'a.b-c@', match: true, why: 'trailing - in a class' },
  { re: '[\\S]', s: ' \t', match: false, why: '\\S in a class' },
  { re: '[^\\s]x', s: 'ax', match: true, why: '\\s in a negated class' },
  { re: 'a{,2}b', s: 'aab', match: true, why: '{,n} is {0,n} (Perl 5.34+)' },
  { re: 'a{2,3}?b', s: 'aab', match: true, why: 'lazy braces' },
  { re: 'a{x}', s: 'a{x}', match: true, why: 'a brace that is no quantifier is literal' },
  { re: '(?#comment)abc', s: 'abc', match: true, why: '(?#...) comment' },
  { re: '(?<=a)b', s: 'ab', match: true, why: 'lookbehind' },
  { re: '(?<!a)b', s: 'ab', match: false, why: 'negative lookbehind' },
  { re: '\\N+x', s: 'abx', match: true, why: '\\N is not-newline' },
  { re: '\\bcafe\\b', flags: 'i', s: 'a CAFE b', match: true, why: '\\b and /i' },
  { re: 'a\\/b', s: 'a/b', match: true, why: 'escaped delimiter' },
  { re: '\\<b\\>', s: '<b>', match: true, why: 'escaped punctuation is literal' },
  { re: 'caf\\xc3\\xa9', s: 'caf\xc3\xa9', match: true, why: 'UTF-8 bytes of é' },
  { re: 'x{2}+y', s: 'xxy', match: true, why: 'possessive braces' },
  { re: '(?n)(a)(b)', s: 'ab', match: true, why: '/n makes groups non-capturing' },
];

test('translation table: every construct behaves as described', () => {
  for (const c of CASES) {
    const t = translatePerlRegex(c.re, c.flags ?? '');
    assert.ok(t.ok, `${c.re}: ${t.ok ? '' : t.reason}`);
    const re = new RegExp(t.source, t.flags);
    assert.equal(re.test(c.s), c.match, `/${c.re}/${c.flags ?? ''} on ${JSON.stringify(c.s)} (${c.why}) → /${t.source}/${t.flags}`);
  }
});

test('translation table agrees with real Perl', (t) => {
  const perl = spawnSync('perl', ['-MJSON::PP', '-e', `
    local $/; my $cases = decode_json(<STDIN>); my @out;
    for my $c (@$cases) { my $s = $c->{s}; utf8::downgrade($s); my $re = $c->{re}; my $f = $c->{flags} // '';
      my $r = eval { qr/(?^$f:$re)/ }; push @out, defined $r ? ($s =~ $r ? 1 : 0) : -1; }
    print encode_json(\\@out);`], { input: JSON.stringify(CASES), encoding: 'utf8' });
  if (perl.error || perl.status !== 0) {
    if (process.env.PORTCULLIS_TEST_STRICT === '1') assert.fail(`perl failed: ${perl.stderr || perl.error?.message}`);
    t.skip('perl with JSON::PP is not available');
    return;
  }
  const results = JSON.parse(perl.stdout) as number[];
  CASES.forEach((c, i) => c.notPerl || assert.equal(results[i], c.match ? 1 : 0, `Perl disagrees on /${c.re}/${c.flags ?? ''} (${c.why})`));
});

test('constructs without a JavaScript equivalent are refused with a reason', () => {
  const refused: [string, RegExp][] = [
    ['a(?R)?b', /recursion/],
    ['(a)?(?(1)b|c)', /conditional/],
    ['a(?{ 1 })', /Perl code/],
    ['\\Ga', /\\G/],
    ['\\p{L}', /Unicode properties/],
    ['(?|(a)|(b))', /branch reset/],
    ['a(*FAIL)', /verb/],
    ['(a', /missing "\)"/],
    ['a)', /unmatched "\)"/],
    ['*a', /follows nothing/],
    ['[a', /unterminated character class/],
    ['a{3,1}', /reversed/],
    ['\\1(a)', /forward backreference/],
    ['%{CAPTURE}x', /capture template/],
  ];
  for (const [re, reason] of refused) {
    const t = translatePerlRegex(re, '');
    assert.equal(t.ok, false, re);
    assert.match((t as { reason: string }).reason, reason, re);
  }
});

test('regex literals: delimiters, modifiers, what follows', () => {
  assert.deepEqual(parseRegexLiteral('/a\\/b/i [if-unset: x]'), { pattern: 'a/b', flags: 'i', rest: '[if-unset: x]' });
  assert.deepEqual(parseRegexLiteral('m{a{2}b}s'), { pattern: 'a{2}b', flags: 's', rest: '' });
  assert.deepEqual(parseRegexLiteral('m!a\\!b!'), { pattern: 'a!b', flags: '', rest: '' });
  assert.deepEqual(parseRegexLiteral('m(a(b)c)'), { pattern: 'a(b)c', flags: '', rest: '' });
  assert.match(parseRegexLiteral('/abc') as string, /unterminated/);
  assert.match(parseRegexLiteral('/abc/q') as string, /modifier "q"/);
  assert.match(parseRegexLiteral('abc') as string, /expected a regular expression/);
});

test('required literals for the prefilter', () => {
  const req = (re: string, f = '') => {
    const t = translatePerlRegex(re, f);
    assert.ok(t.ok);
    return [...t.required].sort();
  };
  assert.deepEqual(req('\\bviagra\\b', 'i'), ['viagra']);
  assert.deepEqual(req('(?:cheap|free) meds'), ['cheap meds', 'free meds']);
  assert.deepEqual(req('\\b(?:lottery|jackpot)\\b'), ['jackpot', 'lottery']);
  assert.deepEqual(req('foo|b'), []); // an alternative shorter than 2 characters
  assert.deepEqual(req('(?:abc)?d'), []);
  assert.deepEqual(req('x(?i:Hello)'), ['xhello']);
  assert.deepEqual(requiredLiterals('a[bc]d+efg'), ['efg']);
});
