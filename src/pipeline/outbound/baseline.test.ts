import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../store/sqlite-store.js';
import { outboundLimitsConfigSchema } from './config.js';
import { Baseline, judgeDay, judgeFailures, judgeNetworks, judgeSpam } from './baseline.js';
import { DAY } from './windows.js';

const config = outboundLimitsConfigSchema.parse({}).baseline;

function setup() {
  const clock = { t: 20_000 * DAY + 9 * 3_600_000 };
  const store = SqliteStore.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ob-base-')), 'state.db'), { now: () => clock.t });
  return { clock, store, b: new Baseline(store, config, 180 * DAY, () => clock.t) };
}

const rcpts = (n: number, domains = n, tag = 'r') => Array.from({ length: n }, (_, k) => `${tag}${k}@d${k % domains}.test`);

test('a user still learning is not judged; after the learning period a day far above the usual trips', async () => {
  const { clock, store, b } = setup();
  const user = 'alice@x.test';
  // Day 0: 10 recipients at 2 domains, same ones every day after.
  for (let day = 0; day < config.learning_days; day++) {
    const today = await b.recordMessage(user, rcpts(10, 2));
    assert.equal(judgeDay(today, await b.usual(user), config), undefined, `day ${day}: learning`);
    clock.t += DAY;
  }
  const usual = await b.usual(user);
  assert.equal(usual.learned, true);
  assert.equal(usual.recipients, 10);
  assert.equal(usual.domains, 2);
  // A normal day does not trip; 60 new recipients at 2 domains does (> max(50, 5 × 10)).
  assert.equal(judgeDay(await b.recordMessage(user, rcpts(10, 2)), usual, config), undefined);
  const trip = judgeDay(await b.recordMessage(user, rcpts(50, 2, 'n')), usual, config);
  assert.equal(trip?.code, 'baseline_volume');
  assert.match(trip!.text, /^60 recipients today are more than 5 times this account's usual 10 a day$/);
  await store.close();
});

test('recipient spread: many domains on one day trips after learning, and first-time recipients are counted once', async () => {
  const { clock, store, b } = setup();
  const user = 'bob@x.test';
  for (let day = 0; day < config.learning_days; day++) {
    await b.recordMessage(user, ['colleague@partner.test']);
    clock.t += DAY;
  }
  const again = await b.recordMessage(user, ['colleague@partner.test']);
  assert.equal(again.newRecipients, 0, 'a known recipient is not new');
  const today = await b.recordMessage(user, rcpts(30, 30, 's'));
  assert.equal(today.newRecipients, 30);
  assert.equal(today.domains, 31);
  const trip = judgeDay({ ...today, recipients: 31 }, await b.usual(user), { ...config, min_volume: 0 });
  assert.equal(trip?.code, 'baseline_spread');
  await store.close();
});

test('failure rate, new networks, spam holds', async () => {
  const { clock, store, b } = setup();
  const user = 'carol@x.test';
  let o = { failures: 0, deliveries: 0 };
  for (let k = 0; k < 10; k++) o = await b.outcome(user, true);
  for (let k = 0; k < 19; k++) o = await b.outcome(user, false);
  assert.equal(judgeFailures(o, config), undefined, '19 failures: below min_failures');
  o = await b.outcome(user, false);
  assert.deepEqual(o, { failures: 20, deliveries: 10 });
  assert.equal(judgeFailures(o, config)?.text, '20 of 30 deliveries today failed (more than 50%)');
  assert.equal(judgeFailures({ failures: 20, deliveries: 30 }, config), undefined, '40% is under the rate');

  // The first login ever is not a new network; a second /24 is; the same /24 again is not.
  assert.deepEqual(await b.network('dave@x.test', '192.0.2.7'), { net: '192.0.2.0/24', isNew: false, today: 0 });
  assert.equal((await b.network('dave@x.test', '192.0.2.99')).isNew, false);
  assert.deepEqual(await b.network('dave@x.test', '198.51.100.1'), { net: '198.51.100.0/24', isNew: true, today: 1 });
  assert.equal((await b.network('dave@x.test', '2001:db8:1:2::5')).net, '2001:db8:1::/48');
  clock.t += 31 * DAY;
  assert.equal((await b.network('dave@x.test', '192.0.2.7')).isNew, true, 'forgotten after network_memory');
  assert.equal(judgeNetworks(4, config), undefined);
  assert.equal(judgeNetworks(5, config)?.code, 'new_networks');

  assert.equal(await b.spamHold(user), 1);
  assert.equal(judgeSpam(2, config), undefined);
  assert.equal(judgeSpam(3, config)?.code, 'spam_holds');
  await b.forgetToday(user);
  assert.equal(await b.spamHold(user), 1, 'forgetToday resets the day');
  await store.close();
});
