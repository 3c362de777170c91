import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsetBuilder } from './dnset.js';
import { EXCLUDED } from './ip4set.js';

function build(entries: [string, 'plain' | 'wild' | 'both', number][]) {
  const b = new DnsetBuilder();
  for (const [name, kind, v] of entries) {
    const bytes = Buffer.from(name, 'latin1');
    b.add(bytes, bytes.length, kind, v);
  }
  return b.finish();
}

const look = (set: ReturnType<typeof build>, name: string) => {
  const m = set.lookup(name);
  return m ? `${m.name}=${m.values.join(',')}` : 'no';
};

test('exact names, wildcards (*.x) and both (.x), as the rbldnsd manual defines them', () => {
  const set = build([
    ['example.com', 'plain', 1],
    ['wild.test', 'wild', 2],
    ['dot.test', 'both', 3],
  ]);
  assert.equal(look(set, 'example.com'), 'example.com=1');
  assert.equal(look(set, 'www.example.com'), 'no');
  assert.equal(look(set, 'wild.test'), 'no');
  assert.equal(look(set, 'a.wild.test'), 'wild.test=2');
  assert.equal(look(set, 'b.a.wild.test'), 'wild.test=2');
  assert.equal(look(set, 'dot.test'), 'dot.test=3');
  assert.equal(look(set, 'x.dot.test'), 'dot.test=3');
  assert.equal(look(set, 'test'), 'no');
  assert.equal(look(set, ''), 'no');
});

test('exclusions: an excluded name is not listed even under a listed wildcard; the longest wildcard decides', () => {
  const set = build([
    ['wild.test', 'wild', 1],
    ['ex.wild.test', 'plain', EXCLUDED],
    ['sub.wild.test', 'wild', EXCLUDED],
    ['deep.sub.wild.test', 'wild', 2],
    ['gone.test', 'both', EXCLUDED],
    ['gone.test', 'wild', 3],
  ]);
  assert.equal(look(set, 'ex.wild.test'), 'no');
  assert.equal(look(set, 'x.ex.wild.test'), 'wild.test=1');
  assert.equal(look(set, 'sub.wild.test'), 'wild.test=1');
  assert.equal(look(set, 'a.sub.wild.test'), 'no');
  assert.equal(look(set, 'x.deep.sub.wild.test'), 'deep.sub.wild.test=2');
  assert.equal(look(set, 'deep.sub.wild.test'), 'no');
  assert.equal(look(set, 'a.gone.test'), 'no', 'an exclusion of a wildcard wins over its listing');
  assert.equal(look(set, 'gone.test'), 'no');
});

test('a name listed several times gives each distinct value once, in file order', () => {
  const set = build([
    ['multi.test', 'plain', 5],
    ['multi.test', 'plain', 6],
    ['multi.test', 'plain', 5],
    ['other.test', 'plain', 9],
  ]);
  assert.equal(look(set, 'multi.test'), 'multi.test=5,6');
  assert.deepEqual(set.sizes, { plain: 3, wild: 0 });
});

test('names that share a 32-bit hash are told apart', () => {
  // FNV-1a is not collision-free: find two names with the same hash (a birthday search).
  const fnv = (s: string) => {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return h >>> 0;
  };
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const name = `n${i}.test`;
    const h = fnv(name);
    const other = seen.get(h);
    if (other) pair = [other, name];
    else seen.set(h, name);
  }
  const [a, b] = pair;
  const set = build([
    [a, 'plain', 1],
    [b, 'plain', 2],
    [a, 'plain', 3],
    [b, 'wild', EXCLUDED],
  ]);
  assert.equal(look(set, a), `${a}=1,3`);
  assert.equal(look(set, b), `${b}=2`);
  assert.equal(look(set, `x.${b}`), 'no');
  assert.equal(look(set, `x.${a}`), 'no');
});
