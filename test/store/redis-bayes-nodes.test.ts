// Bayes shared by two gateway nodes through Redis: `portcullis train` with node A's
// configuration teaches the tokens every node reads; node B, which learned nothing itself,
// judges real corpus spam with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway } from '../helpers/gateway.js';
import { sendRaw } from '../helpers/clients.js';
import { marker } from '../helpers/messages.js';
import { sharedDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, startRedis } from './redis-server.js';

const CORPUS = path.join(sharedDir, 'corpus', 'sa2002-dev.tar.gz');

test('Bayes trained through node A judges on node B (one Redis)', { timeout: 240_000 }, async (t) => {
  if (!needRedis(t)) return;
  assert.ok(fs.existsSync(CORPUS), `the corpus must sit in shared/ beside the repository: ${CORPUS}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayes-nodes-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  execFileSync('tar', ['xzf', CORPUS, '-C', tmp, '--wildcards', './spam/00[0-3]?.eml', './ham/00[0-3]?.eml']); // 0001–0039
  const redis = await startRedis();
  t.after(() => redis.stop());
  const node = (first: boolean) => startGateway({
    // The accounts are in Redis too: added once (through node A), known to both.
    users: first ? userMap('alice') : undefined,
    config: {
      store: { backend: 'redis', url: redis.url(), prefix: 'site:' },
      bayes: { min_learned: 30, autolearn: { enabled: false } },
      policy: { thresholds: { tag: 5, junk: 8, reject: 100 } },
      log: { level: 'info' },
    },
  });
  const a = await node(true);
  t.after(() => a.cleanup());
  const b = await node(false);
  t.after(() => b.cleanup());

  const trained = JSON.parse((await a.cliOk(['train', '--spam', path.join(tmp, 'spam'), '--ham', path.join(tmp, 'ham'), '--json'])).stdout) as
    { file: string; totals: { spam: number; ham: number; tokens: number } };
  assert.match(trained.file, /^redis:\/\/127\.0\.0\.1:\d+\/0 \(prefix site:\)$/, 'train names the shared store, not a file');
  assert.ok(trained.totals.spam >= 30 && trained.totals.ham >= 30, JSON.stringify(trained.totals));
  assert.ok(trained.totals.tokens > 1000);
  // Node B has no Bayes file of its own: its verdicts can only come from Redis.
  assert.ok(!fs.existsSync(path.join(b.dataDir, 'bayes.sqlite')));

  const spam = fs.readFileSync(path.join(tmp, 'spam', '0001.eml')).toString('latin1').replace(/^From .*\n/, '');
  const mark = marker('bayes-nodes');
  const raw = spam.replace(/^Subject: ?(.*)$/m, `Subject: $1 ${mark}`);
  const r = await sendRaw(b.ports.mx, { from: 'news@sender.example', to: [USERS.alice.address] }, raw);
  assert.ok(r.ok, JSON.stringify(r));
  const line = await waitFor('node B\'s message log line with a Bayes symbol', () => b.tail(400).split('\n').find((l) => l.includes('"event":"message"') && /BAYES_/.test(l)),
    { details: () => b.tail(40) });
  assert.match(line, /"name":"BAYES_(9\d|99|999)"/, 'trained spam scores high on the node that learned nothing');
  assert.ok(!a.tail(400).includes(mark), 'the message went through node B only');

  // Training with node B's configuration finds what was learned through A: the same message
  // is "already" known, and the totals are the shared ones.
  const viaB = JSON.parse((await b.cliOk(['train', '--ham', path.join(tmp, 'ham', '0001.eml'), '--json'])).stdout) as
    { ham: { already: number }; totals: { ham: number } };
  assert.equal(viaB.ham.already, 1);
  assert.equal(viaB.totals.ham, trained.totals.ham);
});
