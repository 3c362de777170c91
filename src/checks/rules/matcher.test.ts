import { test } from 'node:test';
import assert from 'node:assert/strict';
import { literalSet, literalsPresent } from './matcher.js';

const naive = (literals: readonly string[], text: string) => literals.map((l) => (text.includes(l) ? 1 : 0));

test('one scan finds exactly the literals String.includes finds: prefixes, overlaps, repeats, specials', () => {
  const literals = ['win', 'winning', 'winning number', 'nin', 'ning n', 'act now', 'now order', 'a.b', '$5', '(x)', 'c++', 'a\\b', '[dot]', 'x-y', '^', 'z|q'];
  const set = literalSet('body', literals);
  const texts = [
    '', 'winning number 7', 'act now order today', 'win', 'wi', 'axb a.b', 'pay $5 now', 'f(x) c++ a\\b', 'www[dot]x-y.com ^ z|q',
    'nnnnning nnnn', 'winwinwin', 'no literal here at all',
  ];
  for (const text of texts) {
    const found = literalsPresent(set, text);
    assert.deepEqual(set.literals.map((l) => found[set.ids.get(l)!]), naive(set.literals, text), JSON.stringify(text));
  }
});

test('random texts over a small alphabet agree with String.includes', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const word = (len: number) => Array.from({ length: len }, () => 'abc'[rnd(3)]).join('');
  const literals = [...new Set(Array.from({ length: 60 }, () => word(2 + rnd(4))))];
  const set = literalSet('rawbody', literals);
  for (let i = 0; i < 300; i++) {
    const text = word(rnd(40));
    const found = literalsPresent(set, text);
    assert.deepEqual(set.literals.map((l) => found[set.ids.get(l)!]), naive(set.literals, text), text);
  }
});

test('a large set is split over several scanners and still finds every literal', () => {
  const literals = Array.from({ length: 4500 }, (_, i) => `lit${i}x`);
  const set = literalSet('uri', literals);
  assert.ok(set.scanners.length >= 3);
  const found = literalsPresent(set, 'see lit4499x and lit7x and lit2000x');
  const hits = set.literals.filter((l) => found[set.ids.get(l)!]).sort();
  assert.deepEqual(hits, ['lit2000x', 'lit4499x', 'lit7x']);
});
