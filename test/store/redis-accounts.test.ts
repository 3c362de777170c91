// Two gateway nodes, one Redis, the accounts in it (store.backend: redis): a user added, a
// password changed, an alias or a spam setting made through node A's configuration work on node
// B at once, seen through real clients (Python's imaplib, poplib, smtplib). With Redis killed,
// every account lookup is a temporary failure — 454 4.7.0, 451 4.3.0, NO [UNAVAILABLE],
// -ERR [SYS/TEMP] — never an accepted unknown user; with Redis back, B answers again by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { needTool } from '../helpers/clients.js';
import { repoRoot } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { needRedis, startRedis } from './redis-server.js';

const PROBE = path.join(repoRoot, 'test', 'store', 'accounts_probe.py');
const USER = 'carol@example.test';
const PW = 'Shared-accounts-pw-8080';
const PW2 = 'Changed-on-node-a-9191';

interface Probe { imap: string; pop3: string; smtp_auth: string; rcpt: Record<string, string> }

async function probe(gw: Gateway, user: string, password: string, rcpts: string[]): Promise<Probe> {
  const { stdout } = await promisify(execFile)('python3', [PROBE, String(gw.ports.imaps), String(gw.ports.pop3s), String(gw.ports.submissions), String(gw.ports.mx), user, password, ...rcpts], { timeout: 60_000 });
  return JSON.parse(stdout) as Probe;
}

test('two nodes, accounts in one Redis: written through A, used on B; Redis killed = temporary failures; back = works, no restart', { timeout: 240_000 }, async (t) => {
  if (!needRedis(t) || !needTool(t, 'python3')) return;
  const redis = await startRedis({ persist: true });
  t.after(() => redis.stop());
  const node = () => startGateway({
    config: {
      store: { backend: 'redis', url: redis.url(2), prefix: 'acct-e2e:', timeout: '300ms' },
      auth: { brute_force: { pair_limit: 1000, ip_limit: 1000, net_limit: 1_000_000, base_delay: '1ms', max_delay: '5ms' } },
      smtp: { max_errors: 1000 }, tarpit: { errors: 0 },
      log: { level: 'info' },
    },
  });
  const a = await node();
  t.after(() => a.cleanup());
  const b = await node();
  t.after(() => b.cleanup());

  // Nobody yet: B refuses the login and the recipient for good.
  let r = await probe(b, USER, PW, [USER]);
  assert.match(r.imap, /^NO .*AUTHENTICATIONFAILED/, r.imap);
  assert.match(r.smtp_auth, /^535 /, r.smtp_auth);
  assert.match(r.rcpt[USER]!, /^550 5\.1\.1 /, r.rcpt[USER]);

  // `user add` with node A's configuration → B logs the user in, over IMAP, POP3 and SMTP AUTH.
  await a.addUser(USER, PW);
  await a.cliOk(['alias', 'add', 'team@example.test', USER]);
  r = await probe(b, USER, PW, [USER, 'team@example.test', 'nobody@example.test']);
  assert.match(r.imap, /^OK /, r.imap);
  assert.match(r.pop3, /^\+OK/, r.pop3);
  assert.match(r.smtp_auth, /^235 /, r.smtp_auth);
  assert.match(r.rcpt[USER]!, /^250 /);
  assert.match(r.rcpt['team@example.test']!, /^250 /, 'the alias added through A');
  assert.match(r.rcpt['nobody@example.test']!, /^550 5\.1\.1 /, 'an unknown user is still refused while Redis answers');

  // `user passwd` on A: the old password stops working on B, the new one works.
  await a.cliOk(['user', 'passwd', USER, '--password-stdin'], { stdin: `${PW2}\n` });
  r = await probe(b, USER, PW, []);
  assert.match(r.imap, /^NO .*AUTHENTICATIONFAILED/, r.imap);
  assert.match(r.smtp_auth, /^535 /, r.smtp_auth);
  r = await probe(b, USER, PW2, []);
  assert.match(r.imap, /^OK /, r.imap);

  // `user set` on A applies on B: the user's block list refuses that sender at RCPT on B.
  await a.cliOk(['user', 'set', USER, 'block+=sender.example']);
  r = await probe(b, USER, PW2, [USER]);
  assert.match(r.rcpt[USER]!, /^550 5\.7\.1 .*does not accept mail from <someone@sender\.example>/, r.rcpt[USER]);
  await a.cliOk(['user', 'set', USER, 'block-=sender.example']);
  assert.match((await b.cliOk(['user', 'show', USER])).stdout, /block \(none\)/, 'B\'s CLI reads the same settings');

  // Redis killed: temporary failures only — the right password, a wrong one, a known and an
  // unknown recipient alike. Nothing accepted, nothing refused for good.
  await redis.kill();
  await waitFor('B notices the outage', () => b.logs.find((l) => l.event === 'accounts_unavailable'), { timeoutMs: 10_000 });
  r = await probe(b, USER, PW2, [USER, 'nobody@example.test']);
  assert.match(r.imap, /^NO .*\[UNAVAILABLE\]/, r.imap);
  assert.match(r.pop3, /^-ERR \[SYS\/TEMP\]/, r.pop3);
  assert.match(r.smtp_auth, /^454 4\.7\.0 /, r.smtp_auth);
  assert.match(r.rcpt[USER]!, /^451 4\.3\.0 /, r.rcpt[USER]);
  assert.match(r.rcpt['nobody@example.test']!, /^451 4\.3\.0 /, 'an unknown user is not accepted, nor refused for good');
  r = await probe(b, USER, 'wrong-password-123', []);
  assert.match(r.smtp_auth, /^454 4\.7\.0 /, 'a wrong password is not even checked');
  const failuresDuringOutage = (await b.cli(['user', 'list'])).code;
  assert.equal(failuresDuringOutage, 1, 'the CLI fails rather than show an empty list');

  // Redis back (its data persisted): B answers again by itself, no restart.
  await redis.start();
  await waitFor('B back', () => b.logs.find((l) => l.event === 'accounts_available' && b.logs.indexOf(l) > b.logs.findIndex((x) => x.event === 'accounts_unavailable')), { timeoutMs: 20_000 });
  r = await probe(b, USER, PW2, [USER, 'nobody@example.test']);
  assert.match(r.imap, /^OK /, r.imap);
  assert.match(r.smtp_auth, /^235 /, r.smtp_auth);
  assert.match(r.rcpt[USER]!, /^250 /);
  assert.match(r.rcpt['nobody@example.test']!, /^550 5\.1\.1 /);
});
