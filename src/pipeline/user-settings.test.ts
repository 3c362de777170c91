import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyAssignments, DEFAULT_SETTINGS, listMatches, recipientPolicy, SettingsError, type SenderFacts } from './user-settings.js';
import { decide } from './policy.js';
import { UserPolicies } from './user-policies.js';
import { AccountStore } from '../auth/accounts.js';

const site = { tag: 5, junk: 8, reject: 15 };
const sym = (score: number) => [{ name: 'X', reason: 'x', score }];
const sender = (over: Partial<SenderFacts> = {}): SenderFacts => ({ envelope: 'a@news.example', from: ['a@news.example'], envelopeAuthenticated: true, fromAuthenticated: false, ...over });

test('assignments: thresholds, never, default, lists; faults named', () => {
  let s = applyAssignments(DEFAULT_SETTINGS, ['spam-filter=off', 'tag=3', 'junk=6', 'reject=never', 'allow+=@Example.COM', 'block+=x@y.example']);
  assert.deepEqual(s, { spam_filter: false, tag: 3, junk: 6, reject: null, allow: ['@example.com'], block: ['x@y.example'] });
  s = applyAssignments(s, ['tag=default', 'allow-=@example.com', 'allow+=@example.com', 'allow+=@example.com']);
  assert.equal(s.tag, undefined);
  assert.deepEqual(s.allow, ['@example.com']);
  const fault = (a: string[], re: RegExp) => assert.throws(() => applyAssignments(DEFAULT_SETTINGS, a), (e: Error) => e instanceof SettingsError && re.test(e.message));
  fault(['tag=ten'], /tag: "ten" is not a number/);
  fault(['junk=9', 'reject=8'], /junk \(9\) must not be above reject \(8\)/);
  fault(['allow=x@y.z'], /use allow\+=ADDRESS/);
  fault(['allow+=not an address'], /allow: "not an address" must be an address/);
  fault(['block-=a@b.example'], /not in the list/);
  fault(['spam-filter=maybe'], /must be on or off/);
  fault(['nonsense'], /expected KEY=VALUE/);
});

test('list entries: whole address, @domain and domain cover subdomains, nothing else', () => {
  const list = ['boss@corp.example', '@friends.example', 'shop.example'];
  assert.ok(listMatches(list, 'Boss@Corp.Example'));
  assert.ok(!listMatches(list, 'other@corp.example'));
  assert.ok(listMatches(list, 'x@mail.friends.example'));
  assert.ok(listMatches(list, 'x@shop.example'));
  assert.ok(!listMatches(list, 'x@notshop.example'));
  assert.ok(!listMatches(list, ''));
});

test('per-recipient actions: opt-out and allow deliver, block refuses, own thresholds; forged From does not unlock the allow list', () => {
  const settings = applyAssignments(DEFAULT_SETTINGS, ['allow+=@news.example']);
  // Allowed through an authenticated envelope sender.
  assert.deepEqual(decide(sym(20), [recipientPolicy(settings, site, sender(), false)], site, false).actions, ['deliver']);
  // The same From: line without proof gets no pass.
  const forged = sender({ envelope: 'bounce@elsewhere.example', envelopeAuthenticated: false });
  assert.deepEqual(decide(sym(20), [recipientPolicy(settings, site, forged, false)], site, false).actions, ['reject']);
  const optOut = applyAssignments(DEFAULT_SETTINGS, ['spam-filter=off']);
  const block = applyAssignments(DEFAULT_SETTINGS, ['block+=@news.example']);
  const strict = applyAssignments(DEFAULT_SETTINGS, ['tag=1', 'junk=2']);
  const v = decide(sym(3), [recipientPolicy(optOut, site, sender(), false), recipientPolicy(block, site, sender(), false), recipientPolicy(strict, site, sender(), false), { exempt: false }], site, false);
  // Block says reject, but others accept: the message is taken once, so it goes to Junk there.
  assert.deepEqual(v.actions, ['deliver', 'junk', 'junk', 'deliver']);
  assert.equal(v.rejectAll, false);
  // Every recipient blocks: refused at SMTP time.
  assert.equal(decide(sym(0), [recipientPolicy(block, site, sender(), false)], site, false).rejectAll, true);
  // reject=never keeps even a very high score out of the reject path.
  const never = applyAssignments(DEFAULT_SETTINGS, ['reject=never']);
  assert.deepEqual(decide(sym(99), [recipientPolicy(never, site, sender(), false)], site, false).actions, ['junk']);
});

test('opt-out files in home directories switch the filter off, re-read on scan', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optout-'));
  try {
    fs.mkdirSync(path.join(dir, 'alice'));
    fs.mkdirSync(path.join(dir, 'bob'));
    fs.writeFileSync(path.join(dir, 'alice', '.spamme'), '');
    const accounts = AccountStore.open(path.join(dir, 'accounts.db'));
    const p = new UserPolicies(accounts, { enabled: true, base_dir: dir, name: '.spamme', refresh: 60_000 });
    p.start();
    try {
      assert.equal(p.settingsFor('alice@example.org')?.spam_filter, false);
      assert.equal(p.settingsFor('bob@example.org'), undefined);
      fs.writeFileSync(path.join(dir, 'bob', '.spamme'), '');
      fs.rmSync(path.join(dir, 'alice', '.spamme'));
      p.scanOptOutFiles();
      assert.equal(p.settingsFor('alice@example.org'), undefined);
      assert.equal(p.settingsFor('bob@example.org')?.spam_filter, false);
    } finally {
      p.stop();
      accounts.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
