import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from './memory-store.js';
import { storeContract } from './store-contract.js';

storeContract('memory', {
  async open(clock) {
    return new MemoryStore({ now: () => clock.t });
  },
  async openPair() {
    // One process's memory is one state: the "pair" is two handles on one instance, closed once.
    const store = new MemoryStore();
    let open = 2;
    const handle = (): MemoryStore => Object.assign(Object.create(store) as MemoryStore, {
      close: async () => { if (--open === 0) await store.close(); },
    });
    return [handle(), handle()];
  },
});

test('memory: bounded in size, expired entries dropped first, then the oldest', async () => {
  const clock = { t: 1_000_000 };
  const store = new MemoryStore({ now: () => clock.t, maxEntries: 100 });
  for (let i = 0; i < 50; i++) await store.set(`old:${i}`, 'x', 10);
  await store.set('keep', 'y', 0);
  clock.t += 100;
  for (let i = 0; i < 60; i++) await store.incr(`live:${i}`, 60_000);
  assert.equal(await store.getValue('keep'), 'y', 'only expired entries went');
  assert.equal(await store.get('live:0'), 1);
  for (let i = 0; i < 200; i++) await store.hit(`flood:${i}`, 60_000);
  assert.ok(store.size <= 100, `size ${store.size}`);
  assert.equal(await store.hit('flood:199', 60_000), 2, 'the newest entries stay');
});
