// The Received trust path (src/checks/rules/received.ts) against the real SpamAssassin: the
// X-Spam-Relays-Trusted/-Untrusted/-Internal/-External values it computes (its _RELAYS*_
// template tags) must be ours, message for message, over a sample of the dev corpus and over
// fixtures of the common MTA formats, with trusted_networks inferred and configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseMessage } from '../../src/mime/text.js';
import { scanInput, Targets } from '../../src/checks/rules/targets.js';
import type { TrustConfig } from '../../src/checks/rules/received.js';
import { extractCorpus, sample } from './corpus.js';
import { diffMessages, findSpamassassin, siteConfig, type DiffMessage } from './spamassassin.js';

const KINDS = ['Trusted', 'Untrusted', 'Internal', 'External'] as const;
const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

/** SpamAssassin's four relay lists per message id. */
function saRelays(sa: string, messages: readonly DiffMessage[], trustedNetworks: string[]): Map<string, Record<string, string>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-relays-'));
  try {
    const { site, localCf } = siteConfig(work, [
      ...KINDS.map((k) => `add_header all Relays${k} _RELAYS${k.toUpperCase()}_`),
      ...(trustedNetworks.length ? [`trusted_networks ${trustedNetworks.join(' ')}`] : []),
    ]);
    const mbox = messages.map((m) => `From diff@example.org  Thu Aug 22 13:17:22 2002\n${m.raw.toString('latin1').replace(/\n*$/, '\n')}\n`).join('');
    const emptyRules = path.join(work, 'rules');
    fs.mkdirSync(emptyRules);
    // SpamAssassin refuses to run without a rule; one that never matches keeps the run cheap.
    fs.writeFileSync(path.join(emptyRules, 'none.cf'), 'body __NEVER_MATCHES /\\A\\z(?!x)x/\n');
    const run = spawnSync(sa, ['-L', '-C', emptyRules, '--siteconfigpath', site, '-p', localCf, '--mbox'], { input: Buffer.from(mbox, 'latin1'), maxBuffer: 256 << 20, timeout: 120_000 });
    if (run.status !== 0) throw new Error(`spamassassin failed (${run.status ?? run.signal}): ${run.stderr?.toString().slice(0, 500)}`);
    const out = new Map<string, Record<string, string>>();
    for (const block of run.stdout.toString('latin1').split(/\n(?=From diff@example\.org {2})/)) {
      const end = block.search(/\n\r?\n/);
      const head = end < 0 ? block : block.slice(0, end + 1);
      const id = /^X-Diff-Id: (\S+)/m.exec(head)?.[1];
      if (!id) continue;
      const r: Record<string, string> = {};
      for (const k of KINDS) r[k] = norm(new RegExp(`^X-Spam-Relays${k}:(.*(?:\\n[ \\t].*)*)`, 'm').exec(head)?.[1] ?? '');
      out.set(id, r);
    }
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Ours, read as a header rule reads them: through the rule engine's targets. */
function ours(m: DiffMessage, trust: TrustConfig): Record<string, string> {
  const t = new Targets({ ...scanInput(parseMessage(m.raw), []), trust }, 1 << 20);
  const out: Record<string, string> = {};
  for (const k of KINDS) out[k] = norm(t.header({ request: `X-Spam-Relays-${k}`, mods: [] }) ?? '');
  return out;
}

function compare(sa: string, messages: readonly DiffMessage[], trusted: string[]): { same: number; diffs: string[]; theirs: Map<string, Record<string, string>> } {
  const theirs = saRelays(sa, messages, trusted);
  let same = 0;
  const diffs: string[] = [];
  for (const m of messages) {
    const want = theirs.get(m.id);
    if (!want) continue;
    const got = ours(m, { trusted });
    const bad = KINDS.filter((k) => got[k] !== want[k]);
    if (!bad.length) same++;
    else diffs.push(`${m.id} ${bad[0]}:\n  SpamAssassin: ${want[bad[0]!]}\n  ours:         ${got[bad[0]!]}`);
  }
  return { same, diffs, theirs };
}

const FIXTURES: [string, string][] = [
  ['postfix-submission', 'Received: from mail.example.net (mail.example.net [192.0.2.10])\n\tby mx.example.org (Postfix) with ESMTPS id 4ABC123\n\tfor <a@example.org>; Mon, 7 Dec 2026 10:00:00 +0000 (UTC)\nReceived: from [10.1.2.3] (helo=laptop)\n\tby mail.example.net with esmtpsa id 1xyz; Mon, 7 Dec 2026 09:59:00 +0000'],
  ['exim', 'Received: from [198.51.100.7] (helo=smtp.example.com)\n\tby mx.example.org with esmtp (Exim 4.96)\n\t(envelope-from <b@example.com>)\n\tid 1kXyZ-0001Ab-Cd\n\tfor a@example.org; Mon, 07 Dec 2026 10:00:00 +0000'],
  ['internal-hop', 'Received: from relay.example.org (relay.example.org [10.0.0.5])\n\tby mx.example.org (Postfix) with ESMTP id 11AA\n\tfor <a@example.org>; Mon, 7 Dec 2026 10:00:01 +0000\nReceived: from out.example.com (out.example.com [203.0.113.9])\n\tby relay.example.org (Postfix) with ESMTP id 22BB; Mon, 7 Dec 2026 10:00:00 +0000'],
  ['sendmail', 'Received: from host.example.com (host.example.com [192.0.2.44])\n\tby mx.example.org (8.15.2/8.15.2) with ESMTP id 0B7A0000123456\n\tfor <a@example.org>; Mon, 7 Dec 2026 10:00:00 GMT'],
  ['qmail-local', 'Received: (qmail 1234 invoked by uid 1000); 7 Dec 2026 10:00:00 -0000\nReceived: from unknown (HELO mail.example.com) (192.0.2.99)\n  by mx.example.org with SMTP; 7 Dec 2026 09:59:59 -0000'],
];

test('X-Spam-Relays-*: the same lists as SpamAssassin on fixtures (inferred and configured trusted_networks) and on a dev-corpus sample', { timeout: 240_000 }, (t) => {
  const sa = findSpamassassin();
  const corpus = extractCorpus();
  if (!sa || !corpus) {
    if (process.env.PORTCULLIS_TEST_STRICT === '1') assert.fail('missing spamassassin or the dev corpus');
    t.skip('spamassassin or the dev corpus missing');
    corpus?.remove();
    return;
  }
  try {
    const fixtures: DiffMessage[] = FIXTURES.map(([id, received]) => ({ id, raw: Buffer.from(`X-Diff-Id: ${id}\n${received}\nFrom: b@example.com\nTo: a@example.org\nSubject: t\nMessage-ID: <${id}@example.com>\n\nbody\n`, 'latin1') }));
    for (const trusted of [[], ['10.0.0.0/8', '192.0.2.10']]) {
      const r = compare(sa, fixtures, trusted);
      assert.equal(r.same, fixtures.length, `trusted_networks [${trusted.join(' ')}]:\n${r.diffs.join('\n')}`);
      // Not two empty answers agreeing: SpamAssassin did list the relays.
      assert.match(r.theirs.get('exim')?.Untrusted ?? '', /\[ ip=198\.51\.100\.7 rdns= helo=smtp\.example\.com by=mx\.example\.org /);
      assert.match(r.theirs.get('internal-hop')?.Trusted ?? '', /ip=10\.0\.0\.5/);
    }
    const messages = diffMessages(sample(corpus, 10, 50).map(([label, name]) => ({ id: `${label}/${name}`, file: corpus.path(label, name) })));
    const r = compare(sa, messages, []);
    // Received.pm reads some rare MTA formats we do not (the diffs name them); nearly all must agree.
    assert.ok(r.same >= messages.length * 0.97, `${r.same}/${messages.length} agree:\n${r.diffs.slice(0, 5).join('\n')}`);
    t.diagnostic(`${r.same}/${messages.length} corpus messages agree with SpamAssassin`);
  } finally {
    corpus.remove();
  }
});
