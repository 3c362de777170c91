// `portcullis dns ptr-plan`: the zone-file output is read back by an independent parser
// (dnspython's zone reader, Debian's python3-dnspython), and bad patterns and pools are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ptrPlanCommand } from './ptr-plan.js';

function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = ptrPlanCommand(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

const PARSE = `
import sys, json, dns.zone, dns.rdatatype
z = dns.zone.from_text(sys.stdin.read(), origin='.', relativize=False, check_origin=False)
out = {}
for name, node in z.nodes.items():
    for rds in node.rdatasets:
        for rd in rds:
            out.setdefault(str(name), []).append([dns.rdatatype.to_text(rds.rdtype), rd.to_text()])
print(json.dumps(out))
`;

test('a /28 pool: one PTR per address, the address in the first label, forward A records that match; dnspython reads the zone', (t) => {
  const r = run(['198.51.100.16/28', '--pattern', 'dyn-{a}-{b}-{c}-{d}.Pool.Example.NET', '--forward']);
  assert.equal(r.code, 0, r.stderr);
  const ptr = r.stdout.split('\n').filter((l) => / IN PTR /.test(l));
  assert.equal(ptr.length, 16);
  assert.equal(ptr[0], '16.100.51.198.in-addr.arpa. IN PTR dyn-198-51-100-16.pool.example.net.');
  assert.equal(ptr[15], '31.100.51.198.in-addr.arpa. IN PTR dyn-198-51-100-31.pool.example.net.');
  // The lines go into zones that have their own $TTL (they carry none, like most generated records).
  const py = spawnSync('/usr/bin/python3', ['-c', PARSE], { input: `$TTL 3600\n${r.stdout}`, encoding: 'utf8' });
  if (py.status !== 0 && /No module named 'dns'/.test(py.stderr)) {
    t.skip('python3-dnspython is not installed');
    return;
  }
  assert.equal(py.status, 0, py.stderr);
  const zone = JSON.parse(py.stdout) as Record<string, [string, string][]>;
  for (let d = 16; d < 32; d++) {
    const name = `dyn-198-51-100-${d}.pool.example.net.`;
    assert.deepEqual(zone[`${d}.100.51.198.in-addr.arpa.`], [['PTR', name]]);
    assert.deepEqual(zone[name], [['A', `198.51.100.${d}`]]);
  }
});

test('{A}..{D} pad to three digits: every name of the pool has the same shape', () => {
  const r = run(['10.0.0.0/31', '--pattern', 'h{A}{B}{C}{D}.dsl.example.net']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^0\.0\.0\.10\.in-addr\.arpa\. IN PTR h010000000000\.dsl\.example\.net\.$/m);
  assert.match(r.stdout, /^1\.0\.0\.10\.in-addr\.arpa\. IN PTR h010000000001\.dsl\.example\.net\.$/m);
});

test('bad input is named: the address outside the first label, a missing number, IPv6, too large a pool', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['198.51.100.0/24'], 2, /one CIDR and --pattern are needed/],
    [['198.51.100.0/24', '--pattern', '{a}-{b}-{c}-{d}.dyn-{d}.example.net'], 1, /only in the first label/],
    [['198.51.100.0/24', '--pattern', 'dyn-{a}-{b}-{c}.pool.example.net'], 1, /lacks \{d\}: every number/],
    [['198.51.100.0/24', '--pattern', 'dyn-{a}-{b}-{c}-{d}'], 1, /needs a domain after the first label/],
    [['198.51.100.0/24', '--pattern', 'dyn-{x}-{a}-{b}-{c}-{d}.pool.example.net'], 1, /unknown placeholder \{x\}/],
    [['198.51.100.0/24', '--pattern', 'dyn_{a}-{b}-{c}-{d}.pool.example.net'], 1, /not a DNS label once filled in/],
    [['2001:db8::/64', '--pattern', 'dyn-{a}-{b}-{c}-{d}.pool.example.net'], 1, /is IPv6: ptr-plan lists IPv4 pools only/],
    [['10.0.0.0/8', '--pattern', 'dyn-{a}-{b}-{c}-{d}.pool.example.net'], 1, /16777216 addresses: at most 65536/],
    [['10.0.0.300/24', '--pattern', 'dyn-{a}-{b}-{c}-{d}.pool.example.net'], 1, /is not a network/],
  ];
  for (const [args, code, message] of cases) {
    const r = run(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});
