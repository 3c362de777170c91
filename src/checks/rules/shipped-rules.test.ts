// The shipped rule set (conf/rules): rules whose behaviour other documents promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseMessage } from '../../mime/text.js';
import { loadRules } from './ruleset.js';
import { RuleEngine } from './engine.js';
import { SHIPPED_RULES } from './config.js';

const msg = (from: string) => parseMessage(Buffer.from(`From: ${from}\r\nTo: a@example.org\r\nSubject: hello\r\n\r\nHi.\r\n`));

test('FROM_RISKY_TLD and URI_RISKY_TLD use one list of top-level domains', () => {
  const text = ['10_headers.cf', '40_uri.cf'].map((f) => fs.readFileSync(path.join(SHIPPED_RULES, f), 'utf8')).join('\n');
  const list = (rule: string) => new RegExp(`^(?:header|uri)\\s+${rule}\\s.*?\\(\\?:([a-z|]+)\\)`, 'm').exec(text)?.[1];
  assert.ok(list('FROM_RISKY_TLD'), 'FROM_RISKY_TLD has a TLD alternation');
  assert.equal(list('FROM_RISKY_TLD'), list('URI_RISKY_TLD'));
});

test('FROM_RISKY_TLD: a From under an abused TLD, not under .com nor a name that merely ends so', async () => {
  const r = loadRules([SHIPPED_RULES]);
  const e = new RuleEngine(r.ruleset, { timeBudgetMs: 2000, maxBytes: 65536 });
  try {
    const hits = async (from: string, uris: string[] = []) => (await e.scan(msg(from), uris, '')).hits.map((h) => h.name);
    assert.ok((await hits('"State Farm" <survey@drivereadykit.sbs>')).includes('FROM_RISKY_TLD'));
    assert.ok((await hits('x <a@b.cyou>')).includes('FROM_RISKY_TLD'));
    assert.ok(!(await hits('x <a@example.com>')).includes('FROM_RISKY_TLD'));
    assert.ok(!(await hits('x <a@topshop.example.com>')).includes('FROM_RISKY_TLD'));
    assert.ok((await hits('x <a@example.com>', ['https://login.example.cfd/'])).includes('URI_RISKY_TLD'));
  } finally {
    await e.close();
  }
});
