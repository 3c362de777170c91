// The openspf RFC 7208 test suite (../shared/conformance/spf/rfc7208-tests.yml, read only), run
// through the gateway's real DNS path: each scenario's zone is served by a DNS server on
// loopback (test/helpers/dns-server.ts, dns2), the gateway's resolver (src/dns/resolver.ts,
// UDP with TCP fallback, cache off) asks it, and the "spf" check (src/checks/spf/spf-check.ts)
// decides. The result is read from the check's symbol, the explanation from its 550 reply.
//
// Zone data follows the suite's own driver conventions (pyspf test/testspf.py): a name's SPF
// (type 99) records are also published as TXT unless the name lists TXT records of its own;
// "TXT: NONE" means no TXT record; "TIMEOUT" makes every type the name has no records of time
// out (the resolver gives up after 200 ms here). SPF records stay published as type 99 too:
// RFC 7208 implementations must not look at them.
//
// Every test must pass except the known deviations listed below, each with its reason; a
// deviation that starts passing fails the test too, so the list cannot go stale.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { sharedDir } from '../helpers/paths.js';
import { startDnsServer, type DnsServer, type ZoneData, type ZoneRecord } from '../helpers/dns-server.js';
import { createResolver } from '../../src/dns/resolver.js';
import { spfCheck } from '../../src/checks/spf/spf-check.js';
import { defaultExplanation } from '../../src/checks/spf/evaluate.js';
import type { ConnectionFacts } from '../../src/checks/types.js';
import { refusal } from '../../src/checks/test-support.js';

const SUITE = path.join(sharedDir, 'conformance', 'spf', 'rfc7208-tests.yml');
const RECEIVER = 'receiver.example.net';

/** Known deviations from the suite: test id → why. Keep in step with docs/spf.md. */
export const DEVIATIONS: ReadonlyMap<string, string> = new Map([
  ['p-macro-multiple',
    'mailauth expands %{p} in mechanisms to the sender domain, not to the validated PTR name of the client ' +
    '(RFC 7208 s7.3); the exists: lookups then miss and the result is "neutral" instead of "pass"/"softfail". ' +
    'RFC 7208 s7.3 says %{p} SHOULD NOT be used; explanations (exp=) expand %{p} correctly.'],
  ['invalid-hello-macro',
    'a mechanism target that is not a valid domain name after macro expansion (here a:%{H} with HELO ' +
    '"JUMPIN\' JUPITER") is a "permerror" in mailauth, before any DNS query; the suite expects the mechanism ' +
    'to not match ("fail").'],
  ['hello-domain-literal',
    'same as invalid-hello-macro, with HELO "[192.168.218.40]": mailauth gives "permerror", the suite expects "fail".'],
  ['require-valid-helo',
    'same as invalid-hello-macro, with HELO "OEMCOMPUTER" inside an included record: "permerror" instead of "fail".'],
]);

interface SuiteTest {
  host: string;
  mailfrom: string;
  helo: string;
  result: string | string[];
  explanation?: string;
  spec?: string | string[];
}

interface Scenario {
  description: string;
  tests: Record<string, SuiteTest>;
  zonedata?: Record<string, (string | Record<string, unknown>)[]>;
}

/** The suite's zone data as ZoneData, with its driver's conventions (see the file comment). */
export function zoneOf(zonedata: Scenario['zonedata']): ZoneData {
  const zone: Record<string, ZoneRecord[]> = {};
  for (const [name, entries] of Object.entries(zonedata ?? {})) {
    const hasTxt = entries.some((e) => typeof e === 'object' && 'TXT' in e);
    const out: ZoneRecord[] = [];
    for (const entry of entries) {
      if (entry === 'TIMEOUT') {
        out.push({ type: 'TIMEOUT' });
        continue;
      }
      if (typeof entry !== 'object') throw new Error(`${name}: unexpected zone entry ${JSON.stringify(entry)}`);
      const [type, value] = Object.entries(entry)[0]!;
      if (value === 'NONE') continue;
      switch (type) {
        case 'SPF':
        case 'TXT': {
          const data = Array.isArray(value) ? value.map(String) : String(value);
          out.push({ type, data });
          if (type === 'SPF' && !hasTxt) out.push({ type: 'TXT', data });
          break;
        }
        case 'MX': {
          const [priority, exchange] = value as [number, string];
          out.push({ type: 'MX', data: { priority, exchange } });
          break;
        }
        case 'A':
        case 'AAAA':
        case 'PTR':
        case 'CNAME':
          out.push({ type, data: String(value) });
          break;
        default:
          throw new Error(`${name}: record type ${type} not supported by the test server`);
      }
    }
    zone[name] = out;
  }
  return zone;
}

function loadSuite(): Scenario[] {
  return YAML.parseAllDocuments(fs.readFileSync(SUITE, 'utf8')).map((d) => d.toJS() as Scenario);
}

function conn(host: string, helo: string): ConnectionFacts {
  return {
    sessionId: 'suite', listener: 'mx', listenerKind: 'mx', remoteAddress: host, remotePort: 40000,
    localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, helo, esmtp: true,
  };
}

let server: DnsServer;
before(async () => {
  server = await startDnsServer({});
});
after(async () => {
  await server?.close();
});

test('RFC 7208 test suite through the gateway resolver and the spf check', async (t) => {
  const scenarios = loadSuite();
  let total = 0;
  let passed = 0;
  const failures: string[] = [];
  const deviated: string[] = [];
  for (const scenario of scenarios) {
    server.set(zoneOf(scenario.zonedata));
    // A fresh resolver per scenario, cache off: no answer of one scenario leaks into the next.
    const resolver = createResolver({
      servers: [server.server], timeoutMs: 200, attempts: 1, maxInflight: 200,
      cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000,
    });
    const check = spfCheck({ resolver, hostname: RECEIVER, config: { enabled: true, helo: false } });
    for (const [id, c] of Object.entries(scenario.tests)) {
      total++;
      const out = await check.run({ conn: conn(c.host, c.helo), sender: c.mailfrom });
      const symbol = out.symbols?.[0]?.name ?? '';
      const result = symbol.replace(/^SPF_/, '').toLowerCase();
      const expected = ([] as string[]).concat(c.result);
      const problems: string[] = [];
      if (!expected.includes(result)) problems.push(`result ${result}, expected ${expected.join(' or ')} (${out.symbols?.[0]?.reason})`);
      if (c.explanation !== undefined && result === 'fail') {
        const d = refusal(out, { stage: 'mail' });
        const text = d?.kind === 'reject' ? d.reply.text : '';
        const ip = c.host.replace(/^::ffff:/i, '');
        const domain = (c.mailfrom || `postmaster@${c.helo}`).split('@').pop()!.toLowerCase();
        const want = c.explanation === 'DEFAULT' ? defaultExplanation(domain, ip) : c.explanation;
        if (!text.endsWith(`: ${want}`)) problems.push(`explanation: reply "${text}", expected it to end in "${want}"`);
      }
      // Whatever the result, the check always reports it in both headers.
      assert.match(out.authResults?.[0] ?? '', new RegExp(`^spf=${result} smtp\\.(mailfrom|helo)=`), id);
      assert.match(out.trace?.[0] ?? '', new RegExp(`^Received-SPF: ${result} \\(`), id);
      const deviation = DEVIATIONS.get(id);
      if (deviation) {
        if (!problems.length) failures.push(`${id}: listed as a deviation but now passes: remove it from DEVIATIONS and docs/spf.md`);
        else deviated.push(`${id}: ${problems.join('; ')}`);
        continue;
      }
      if (problems.length) failures.push(`${scenario.description} / ${id}: ${problems.join('; ')}`);
      else passed++;
    }
  }
  const line = `RFC 7208 suite: ${passed} passed of ${total} (${deviated.length} documented deviations)`;
  console.log(line);
  t.diagnostic(line);
  for (const d of deviated) t.diagnostic(`deviation ${d}`);
  assert.equal(total, 203, 'the suite has 203 tests');
  assert.deepEqual(failures, []);
  assert.equal(passed + deviated.length, total);
});
