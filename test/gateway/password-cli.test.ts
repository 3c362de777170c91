// `portcullis user add|passwd` refuse weak passwords with the reason, and keep the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../helpers/gateway.js';

test('weak passwords are refused by user add and user passwd, with the reason', { timeout: 60_000 }, async (t) => {
  const gw = await startGateway({ users: { 'dana@example.test': 'Granite-Sparrow-77' } });
  t.after(() => gw.cleanup());
  const cases: [string, RegExp][] = [
    ['short', /at least 10 characters/],
    ['Password123!', /common|too easy/],
    ['my-dana-password-x9', /user name|dana/],
    ['example-test-horse-42', /part of the address|example/],
    ['qwertyuiopasdf', /too easy to guess \(strength [0-2] of 4\)/],
  ];
  for (const [pw, reason] of cases) {
    const r = await gw.cli(['user', 'passwd', 'dana@example.test', '--password-stdin'], { stdin: `${pw}\n` });
    assert.notEqual(r.code, 0, `${pw} refused`);
    assert.match(r.stderr, reason, `${pw}: ${r.stderr}`);
    if (pw.includes('dana')) continue; // only dana's own name is forbidden to dana
    const add = await gw.cli(['user', 'add', 'erin@example.test', '--password-stdin'], { stdin: `${pw}\n` });
    assert.notEqual(add.code, 0, `user add with ${pw} refused`);
  }
  assert.doesNotMatch((await gw.cliOk(['user', 'list'])).stdout, /erin@/);
  await gw.cliOk(['user', 'passwd', 'dana@example.test', '--password-stdin'], { stdin: 'Lantern-Glacier-pivot-5\n' });
});
