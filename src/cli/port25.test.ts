// `portcullis policy port25`: the ruleset passes nft's own syntax check (`nft -c -f`, which
// changes nothing), and --verify is run against what nft itself lists after loading the ruleset
// into a throwaway network namespace (`unshare -n`: the host's ruleset is never touched), then
// against the same namespace with gaps made on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { port25Command, canonicalNet } from './port25.js';
import type { Resolver, Lookup, RRType } from '../dns/types.js';

const NFT = '/usr/sbin/nft';
const strict = process.env.CI === 'true' || process.env.PORTCULLIS_TEST_STRICT === '1';

const zone: Record<string, Record<string, string[]>> = {
  'mx1.example.org': { A: ['192.0.2.25'], AAAA: ['2001:db8::25'] },
  'relay.example.org': { A: ['198.51.100.7'] },
};
const resolver: Resolver = {
  async lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>> {
    if (name === 'broken.example.org') return { status: 'error', code: 'servfail', reason: 'SERVFAIL', source: 'dns' };
    const records = zone[name]?.[type];
    if (!zone[name]) return { status: 'nxdomain', source: 'dns' };
    return records ? { status: 'ok', records: records as never, ttl: 60, source: 'dns' } : { status: 'nodata', source: 'dns' };
  },
};

async function run(args: string[], listRuleset?: () => Promise<string>) {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, resolver, listRuleset };
  const code = await port25Command(args, { dns: {} as never }, io);
  return { code, stdout, stderr };
}

const ARGS = ['--authorized', 'mx1.example.org', 'relay.example.org', '203.0.113.8/29', '--networks', '10.0.0.0/8', 'fd00::/8'];

function nftAvailable(t: { skip(m: string): void }): boolean {
  const r = spawnSync(NFT, ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return true;
  if (strict) throw new Error('nftables is required (scripts/test.sh installs it)');
  t.skip('nft is not installed');
  return false;
}

test('the ruleset: its own table, the resolved servers and networks in sets, accepts before drops, and nft -c accepts it', async (t) => {
  const r = await run(ARGS);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout;
  assert.match(text, /^table inet portcullis_port25 \{$/m);
  assert.match(text, /set mail_ports \{ type inet_service; elements = \{ 25, 465, 587 \} \}/);
  assert.match(text, /set servers4 \{ type ipv4_addr; flags interval; elements = \{ 192\.0\.2\.25, 198\.51\.100\.7, 203\.0\.113\.8\/29 \} \}/);
  assert.match(text, /set servers6 \{ type ipv6_addr; flags interval; elements = \{ 2001:db8::25 \} \}/);
  assert.match(text, /set networks4 .* elements = \{ 10\.0\.0\.0\/8 \}/);
  for (const hook of ['input', 'output', 'forward']) assert.match(text, new RegExp(`chain ${hook} \\{\\n    type filter hook ${hook} priority filter; policy accept;`));
  const forward = text.slice(text.indexOf('chain forward'));
  assert.ok(forward.indexOf('tcp dport @mail_ports ip daddr @servers4 accept') < forward.indexOf('tcp dport @mail_ports ip saddr @networks4 counter drop'));
  assert.match(forward, /tcp sport @mail_ports ip6 daddr @networks6 counter drop/);
  // Without --networks every host but the servers is refused the mail ports.
  const open = await run(['--authorized', '192.0.2.25']);
  assert.match(open.stdout, /^ {4}tcp dport @mail_ports counter drop$/m);
  assert.doesNotMatch(open.stdout, /networks4/);
  if (!nftAvailable(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'port25-'));
  for (const [name, body] of [['sites.nft', text], ['open.nft', open.stdout]]) {
    writeFileSync(join(dir, name), body);
    const check = spawnSync(NFT, ['-c', '-f', join(dir, name)], { encoding: 'utf8' });
    assert.equal(check.status, 0, `nft -c -f ${name}: ${check.stderr}`);
  }
});

test('--verify against the running ruleset (nft in a throwaway network namespace): no gap, then each gap named', async (t) => {
  if (!nftAvailable(t)) return;
  const probe = spawnSync('unshare', ['-n', NFT, 'list', 'ruleset'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip(`cannot make a network namespace (unshare -n needs root): ${probe.stderr.trim()}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'port25-'));
  const file = join(dir, 'policy.nft');
  writeFileSync(file, (await run(ARGS)).stdout);
  // Everything happens in one namespace that ends with the shell: load, list, break, list.
  const script = [
    `nft -f ${file}`, 'nft -j list ruleset', 'echo ===',
    "nft delete element inet portcullis_port25 servers4 '{ 198.51.100.7 }'",
    "nft add element inet portcullis_port25 servers4 '{ 192.0.2.99 }'",
    'nft delete chain inet portcullis_port25 output',
    'nft insert rule inet portcullis_port25 forward tcp dport 25 accept',
    'nft -j list ruleset',
  ].join(' && ');
  const out = execFileSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  const [good, broken] = out.split('===\n');
  const ok = await run([...ARGS, '--verify'], async () => good!);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /enforces the port-25 policy/);
  const bad = await run([...ARGS, '--verify'], async () => broken!);
  assert.equal(bad.code, 1);
  const gaps = bad.stdout.trim().split('\n');
  assert.deepEqual(gaps.sort(), [
    'gap: chain forward (hook forward) has a rule the policy does not: "tcp dport 25 accept"',
    'gap: no chain on hook output: traffic from this host is not filtered',
    'gap: set servers4 has 192.0.2.99, which the policy does not name (an unauthorized host may use the mail ports)',
    'gap: set servers4 lacks 198.51.100.7 (an authorized server is refused the mail ports)',
  ]);
  const none = await run([...ARGS, '--verify'], async () => JSON.stringify({ nftables: [{ metainfo: {} }] }));
  assert.match(none.stdout, /^gap: table inet portcullis_port25 is not loaded/);
});

test('bad input is named: no server, a bad network, a name without addresses, DNS down, nft unreadable', async () => {
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /--authorized names at least one mail server/],
    [['stray', '--authorized', '192.0.2.1'], 2, /unexpected "stray"/],
    [['--authorized', '192.0.2.1', '--networks', '10.0.0.0/33'], 1, /--networks "10\.0\.0\.0\/33" is not an address or network/],
    [['--authorized', 'nothing.example.org'], 1, /nothing\.example\.org has no A or AAAA record/],
    [['--authorized', 'broken.example.org'], 1, /DNS lookup failed \(SERVFAIL\); give its addresses instead/],
    [['--authorized', 'not a host!'], 1, /is neither an address, a network nor a host name/],
  ];
  for (const [args, code, message] of cases) {
    const r = await run(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const unreadable = await run(['--authorized', '192.0.2.1', '--verify'], async () => {
    throw new Error('Operation not permitted');
  });
  assert.equal(unreadable.code, 1);
  assert.match(unreadable.stderr, /cannot read the running ruleset .*Operation not permitted/);
  assert.equal(canonicalNet('10.1.2.3/8'), '10.0.0.0/8');
  assert.equal(canonicalNet('2001:DB8:0:0::1/32'), '2001:db8::/32');
});
