// Differential test against the real rbldnsd (Debian's package): the same zone files are served
// by rbldnsd and loaded by ZoneMirror/ZoneSet and served by zone-server; for several hundred
// names (listed, excluded, unlisted, the edges of ranges, wildcards, TXT templates, names that
// are not addresses) the three must give the same answers. Where this file is green, the
// mirror answers as rbldnsd would for the same file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import packet from 'dns-packet';
import { silentLogger } from '../../log.js';
import { startZoneServer, type ZoneServer } from '../zone-server.js';
import type { Lookup } from '../types.js';
import { ZoneSet } from './zone-mirror.js';
import type { MalformedLine, ZoneType } from './zone.js';

/** Debian's path; PORTCULLIS_RBLDNSD points elsewhere (another build, or a missing one to see the skip). */
const RBLDNSD = process.env.PORTCULLIS_RBLDNSD ?? '/usr/sbin/rbldnsd';
const STRICT = process.env.CI === 'true' || process.env.PORTCULLIS_TEST_STRICT === '1';
const AVAILABLE = (() => {
  try {
    fs.accessSync(RBLDNSD, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

const LONG = 'x'.repeat(300);

/** The zone files: zone name → type and content. */
const ZONES: Record<string, { type: ZoneType; file: string; text: string }> = {
  'ip4.compat.test': {
    type: 'ip4set',
    file: 'ip4.zone',
    text: `# an ip4set exercising rbldnsd's syntax
; another comment
$TTL 300
$SOA 3600 ns1.example.net hostmaster.example.net 0 2h 1h 1w 600
$NS 1d ns1.example.net -ns9.example.net ns2.example.net
$1 http://lists.example.test/lookup
:127.0.0.2:Listed $ see $1?ip=$
10.0.0.0/8 :3:Ten net $
10.1.0.0/16
!10.1.2.0/24
10.1.2.3 :4:
10.1.2.5 :5
10.1.2.6 custom $ and $$ and $2 end
10.1.2.6 :7:second value
10.1.2.7 :127.0.0.4:two
10.1.2.7 :4:two
10.1.2.8 :4:two
10.1.2.8 :4:two
1.2.3.4/24
1.2.3
5.6.7.8-20
8.8.8.0/25
!8.8.8.8
:127.0.0.9:new default $
20.0.0.1
20.0.0.2 ; comment
20.0.0.3 # comment
20.0.0.4;x
20.0.0.5:6:no space
20.0.0.6\t:8\t:\ttabs
20.0.0.7 :9: # hash kept
20.0.0.8 :1.2:two-part A
20.0.0.9 :1.2.3:three-part A
20.0.0.10 :0:zero
20.0.0.11 :300:bad
20.0.0.12 :2 junk
20.0.0.13 x # y ; z
20.0.0.14 Ünïcödé $
20.0.0.15 :2:${LONG} $
20.0.0.16 :2:$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1 $
garbage line
300.1.2.3
1.2.3.4/33
30.0.0
40.1-20
127.16-31
172.16.0.0-172.31.255.255
192.168.1.10-192.168.3.20
192.168.10.0/23
!192.168.11.128/25
0.0.0.0/0
11
11/8
12.0.0.0/7
14.1.0.0/15
50.0.0.1-50.0.0.0
60.1.2.3.4
  70.0.0.1  \t
80.0.0.0/9
!80.1.2.3
!90.0.0.1
127.5.0.0-127.5
127.6.0.0-127.6.0.255
100.64-100.127.255
100.0.0.0/10 :7:cgn $
!100.64.0.0/16
`,
  },
  'nested.ip4.compat.test': { type: 'ip4set', file: 'nested.zone', text: '1.2.3.4 :8:nested $\n' },
  'base.compat.test': {
    type: 'ip4set',
    file: 'base.zone',
    text: `$= Base [$=] for $ end
$1 first
$1 second
$2
$MAXRANGE4 /16
$MAXRANGE4 /8
:5:tmpl $1 $
1.1.1.1
1.1.1.2 own text $
1.1.1.3 =raw $ text
1.1.1.4 :6:
1.1.1.5 $$ $9 $= $x
1.1.1.6 =
10.0.0.0/8
10.1.0.0/16
10.2.0.0-10.2.255.255
10.3.0.0-10.4.0.0
$ttl 1m
$TIMESTAMP 2020:01:01
$FOO bar
#$TTL 70
`,
  },
  't4.compat.test': {
    type: 'ip4tset',
    file: 't4.zone',
    text: `:127.0.0.5:tset $ listed
:127.0.0.6:second default ignored
192.0.2.1
192.0.2.2 :9:ignored value
192.0.2.0/24
198.51.100
!192.0.2.1
192.0.2.3 # comment
192.0.2.4;c
203.0.113.255
0.0.0.0
255.255.255.255
192.0.2.1
`,
  },
  's6.compat.test': {
    type: 'ip6tset',
    file: 's6.zone',
    text: `:3:v6 $ listed
2001:db8:1:2
2001:DB8:1:3
2001:db8:1:4/64
2001:db8:1:5:
2001:db8:1:6 :5:x
2001:db8:1:7::
!2001:db8:1:2::
!2001:db8:1:2:0:0:0:ff
!2001:db8:1:2/64
2001:db8:00001:8
1:2:3:4:5:6:7:8
2001:db8:1:9#c
::
0:0:0:0
ffff:ffff:ffff:ffff
!ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff
2001:db8:12345:1
`,
  },
  'dn.compat.test': {
    type: 'dnset',
    file: 'dn.zone',
    text: `:2:Domain $ listed
example.com
*.wild.test :3:wild $
.dot.test :4:dot $
!ex.wild.test
!*.sub.wild.test
*.deep.sub.wild.test
Mixed.Case.Test
foo.test trailing text
*.
.
*
bad..name.test
.a.
name.with.dot.
!excluded.only.test
multi.test :5:one
multi.test :6:two
multi.test :5:one
*.multi.test :7:wild multi
x.multi.test
!.gone.test
*.gone.test
:8:
after.default.test
${'l'.repeat(64)}.test
`,
  },
  'old.compat.test': { type: 'ip4set', file: 'old.zone', text: '$TIMESTAMP 2020:01:01 +1d\n1.1.1.1\n' },
  // No ":" line at all: rbldnsd's built-in 127.0.0.2 and no TXT.
  't0.compat.test': { type: 'ip4tset', file: 't0.zone', text: '192.0.2.1\n' },
  's0.compat.test': { type: 'ip6tset', file: 's0.zone', text: '2001:db8:aa:bb\n!2001:db8:aa:bb::1\n' },
};

const rev4 = (ip: string) => ip.split('.').reverse().join('.');

/** The 32 reversed nibbles of an IPv6 address, as ip6.arpa names them. */
function nibbles(ip6: string): string {
  const [head, tail] = ip6.includes('::') ? ip6.split('::') : [ip6, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.');
}

/** A small deterministic PRNG (mulberry32), so that the random sample is the same every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function queryNames(): string[] {
  const ip4 = [
    '10.0.0.1', '10.255.255.255', '10.0.0.0', '10.1.0.1', '10.1.255.255', '10.1.2.0', '10.1.2.3', '10.1.2.4', '10.1.2.5',
    '10.1.2.6', '10.1.2.7', '10.1.2.8', '10.1.2.255', '10.1.3.0', '10.2.0.0', '1.2.3.0', '1.2.3.9', '1.2.3.255', '1.2.4.0',
    '1.2.2.255', '5.6.7.7', '5.6.7.8', '5.6.7.20', '5.6.7.21', '8.8.8.0', '8.8.8.8', '8.8.8.9', '8.8.8.127', '8.8.8.128',
    '30.0.0.0', '30.0.0.255', '30.0.1.0', '40.0.255.255', '40.1.0.0', '40.20.255.255', '40.21.0.0', '127.16.0.0',
    '127.31.255.255', '127.32.0.0', '127.15.255.255', '172.16.0.0', '172.31.255.255', '172.15.255.255', '172.32.0.0',
    '192.168.1.9', '192.168.1.10', '192.168.2.77', '192.168.3.20', '192.168.3.21', '192.168.10.0', '192.168.11.127',
    '192.168.11.128', '192.168.11.255', '192.168.12.0', '11.0.0.0', '11.255.255.255', '12.0.0.0', '13.255.255.255',
    '14.1.0.0', '50.0.0.0', '50.0.0.1', '60.1.2.3', '70.0.0.1', '80.0.0.0', '80.127.255.255', '80.128.0.0', '80.1.2.3',
    '80.1.2.4', '90.0.0.1', '127.5.0.0', '127.5.255.255', '127.6.0.0', '127.6.0.255', '127.6.1.0', '100.63.255.255',
    '100.64.0.0', '100.64.255.255', '100.65.0.0', '100.127.255.255', '100.128.0.0', '100.0.0.1',
    ...Array.from({ length: 17 }, (_, i) => `20.0.0.${i}`),
  ];
  const random = prng(20240601);
  const pick = (prefixes: number[][]) => {
    const p = prefixes[Math.floor(random() * prefixes.length)];
    const o = [...p];
    while (o.length < 4) o.push(Math.floor(random() * 256));
    return o.join('.');
  };
  for (let i = 0; i < 150; i++) ip4.push(pick([[10, 1], [10, 1, 2], [10], [192, 168], [80], [8, 8, 8], [5, 6, 7], [100], [127], [172]]));

  const names: string[] = [];
  for (const ip of ip4) names.push(`${rev4(ip)}.ip4.compat.test`);
  names.push(
    'ip4.compat.test', 'x.ip4.compat.test', '3.2.1.ip4.compat.test', '5.4.3.2.1.ip4.compat.test', '01.0.0.10.ip4.compat.test',
    '001.002.003.010.ip4.compat.test', '256.0.0.10.ip4.compat.test', '1000.0.0.10.ip4.compat.test', 'a.b.c.d.ip4.compat.test',
    '1.0.0.10.IP4.Compat.Test',
    `${nibbles('2002:a01:203::1')}.ip4.compat.test`, `${nibbles('2002:a01:204::')}.ip4.compat.test`,
    `${nibbles('::ffff:a01:206')}.ip4.compat.test`, `${nibbles('::ffff:a01:204')}.ip4.compat.test`,
    `${nibbles('2001:db8::1')}.ip4.compat.test`,
    '4.3.2.1.nested.ip4.compat.test', '5.3.2.1.nested.ip4.compat.test', 'nested.ip4.compat.test',
  );
  for (const ip of ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4', '1.1.1.5', '1.1.1.6', '1.1.1.7', '10.0.0.1', '10.1.0.1', '10.2.3.4', '10.3.0.0', '10.4.0.0']) {
    names.push(`${rev4(ip)}.base.compat.test`);
  }
  for (const ip of ['192.0.2.0', '192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '203.0.113.254', '203.0.113.255', '0.0.0.0', '255.255.255.255', '198.51.100.0']) {
    names.push(`${rev4(ip)}.t4.compat.test`);
  }
  names.push('t4.compat.test', '2.0.192.t4.compat.test');
  for (const ip of [
    '2001:db8:1:2::1', '2001:db8:1:2::', '2001:db8:1:2::ff', '2001:db8:1:2::fe', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:3::1',
    '2001:db8:1:4::1', '2001:db8:1:5::1', '2001:db8:1:6::abcd', '2001:db8:1:7::', '2001:db8:1:8::1', '2001:db8:1:9::', '::', '::1',
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '1:2:3:4:5:6:7:8', '2001:db8:2345:1::',
  ]) {
    names.push(`${nibbles(ip)}.s6.compat.test`);
  }
  for (let i = 0; i < 40; i++) {
    const low = Array.from({ length: 4 }, () => Math.floor(random() * 65536).toString(16)).join(':');
    const high = ['2001:db8:1:2', '2001:db8:1:3', '2001:db8:1:8', '2001:db8:1:a', 'ffff:ffff:ffff:ffff', '0:0:0:0'][i % 6];
    names.push(`${nibbles(`${high}:${low}`)}.s6.compat.test`);
  }
  names.push(`${nibbles('2001:db8:aa:bb::1')}.s0.compat.test`, `${nibbles('2001:db8:aa:bb::2')}.s0.compat.test`, '1.2.0.192.t0.compat.test');
  const v6 = nibbles('2001:db8:1:2::1');
  names.push(
    `${v6.slice(32)}.s6.compat.test`, `0.${v6}.s6.compat.test`, `${v6.toUpperCase()}.s6.compat.test`,
    `${v6.replace(/^1/, 'g')}.s6.compat.test`, `${v6.replace(/^1/, '01')}.s6.compat.test`, 's6.compat.test',
  );
  for (const n of [
    'example.com', 'www.example.com', 'wild.test', 'a.wild.test', 'b.a.wild.test', 'ex.wild.test', 'x.ex.wild.test', 'sub.wild.test',
    'a.sub.wild.test', 'x.deep.sub.wild.test', 'deep.sub.wild.test', 'y.x.deep.sub.wild.test', 'dot.test', 'a.dot.test', 'mixed.case.test',
    'MIXED.CASE.test', 'foo.test', '*', 'bad.name.test', 'a', 'x.a', 'name.with.dot', 'excluded.only.test', 'multi.test', 'x.multi.test',
    'y.multi.test', 'gone.test', 'a.gone.test', 'com', 'test', 'after.default.test', 'nonexistent.example',
  ]) {
    names.push(`${n}.dn.compat.test`);
  }
  const labels = ['a', 'www', 'mail', 'x1', 'deep', 'sub', 'ex', 'multi', 'gone', 'dot', 'wild', 'test'];
  for (let i = 0; i < 60; i++) {
    const depth = 1 + Math.floor(random() * 4);
    const parts = Array.from({ length: depth }, () => labels[Math.floor(random() * labels.length)]);
    names.push(`${parts.join('.')}.${['wild.test', 'sub.wild.test', 'dot.test', 'multi.test', 'gone.test', 'test'][i % 6]}.dn.compat.test`);
  }
  names.push('dn.compat.test', '1.1.1.1.old.compat.test', 'old.compat.test', 'unrelated.example', 'compat.test');
  return names;
}

// ---- a DNS client for the test: UDP (and TCP) queries decoded by dns-packet

interface Reply {
  rcode: string;
  aa: boolean;
  tc: boolean;
  answers: string[];
  authorities: string[];
  additionals: string[];
}

function rrText(a: packet.Answer): string {
  const d = (a as { data?: unknown }).data;
  let data: string;
  if (a.type === 'TXT') data = ([] as Buffer[]).concat(d as Buffer[]).map((b) => Buffer.from(b).toString('latin1')).join('|');
  else if (a.type === 'SOA') data = JSON.stringify(d);
  else data = String(d).toLowerCase();
  return `${a.name.toLowerCase()} ${a.type} ${(a as { ttl?: number }).ttl} ${data}`;
}

function toReply(p: packet.DecodedPacket): Reply {
  return {
    rcode: (p as unknown as { rcode: string }).rcode,
    aa: p.flag_aa,
    tc: p.flag_tc,
    answers: (p.answers ?? []).map(rrText).sort(),
    authorities: (p.authorities ?? []).map(rrText).sort(),
    additionals: (p.additionals ?? []).map(rrText).sort(),
  };
}

class UdpClient {
  private readonly sock = dgram.createSocket('udp4');
  private readonly waiting = new Map<number, (p: packet.DecodedPacket) => void>();
  private id = 1;

  constructor(private readonly port: number) {
    this.sock.on('message', (msg) => {
      try {
        const p = packet.decode(msg);
        this.waiting.get(p.id!)?.(p);
      } catch {
        /* ignored: the test fails on the timeout */
      }
    });
  }

  query(name: string, type: string, timeoutMs = 2000): Promise<Reply> {
    const id = this.id++ & 0xffff || this.id++;
    const buf = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type: type as packet.RecordType, class: 'IN' }] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no answer to ${type} ${name} on port ${this.port}`));
      }, timeoutMs);
      this.waiting.set(id, (p) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(toReply(p));
      });
      this.sock.send(buf, this.port, '127.0.0.1');
    });
  }

  close(): void {
    this.sock.close();
  }
}

function tcpQuery(port: number, name: string, type: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.setTimeout(2000, () => sock.destroy(new Error('tcp timeout')));
    sock.on('error', reject);
    sock.on('connect', () => sock.write(packet.streamEncode({ type: 'query', id: 7, questions: [{ name, type: type as packet.RecordType, class: 'IN' }] })));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.end();
        resolve(toReply(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)))));
      }
    });
  });
}

/** What the rcode/answers of a DNS reply look like as a Lookup from ZoneMirror. */
function fromLookup(l: Lookup<'A'> | Lookup<'TXT'> | undefined, name: string, type: 'A' | 'TXT'): { rcode: string; answers: string[] } {
  if (!l) return { rcode: 'REFUSED', answers: [] };
  switch (l.status) {
    case 'nxdomain':
      return { rcode: 'NXDOMAIN', answers: [] };
    case 'nodata':
      return { rcode: 'NOERROR', answers: [] };
    case 'error':
      return { rcode: 'SERVFAIL', answers: [] };
    case 'ok': {
      const answers = (l.records as unknown[]).map((r) => {
        const data = type === 'TXT' ? Buffer.from((r as string[]).join(''), 'utf8').toString('latin1') : String(r);
        return `${name.toLowerCase()} ${type} ${l.ttl} ${data}`;
      });
      return { rcode: 'NOERROR', answers: answers.sort() };
    }
  }
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function rbldnsdUser(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  return /^rbldns:/m.test(passwd) ? 'rbldns' : 'nobody';
}

describe('rbldnsd compatibility (differential)', { skip: !AVAILABLE && !STRICT ? `rbldnsd is not installed (${RBLDNSD}); apt-get install rbldnsd to run this test` : false }, () => {
  let dir: string;
  let rbldnsd: ChildProcess | undefined;
  let rbldnsdOutput = '';
  let rbl: UdpClient;
  let ours: UdpClient;
  let zones: ZoneSet;
  let server: ZoneServer;
  const malformed: MalformedLine[] = [];

  before(async () => {
    if (!AVAILABLE) throw new Error(`rbldnsd is required (CI / PORTCULLIS_TEST_STRICT): ${RBLDNSD} is missing`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-rbldnsd-'));
    // rbldnsd drops root for its own user and chroots to the directory: both must be able to read.
    fs.chmodSync(dir, 0o755);
    for (const z of Object.values(ZONES)) fs.writeFileSync(path.join(dir, z.file), z.text, { mode: 0o644 });

    const port = await freeUdpPort();
    const user = rbldnsdUser();
    const args = ['-n', '-t', '35m', '-b', `127.0.0.1/${port}`, ...(user ? ['-u', user, '-r', dir] : ['-w', dir])];
    for (const [name, z] of Object.entries(ZONES)) args.push(`${name}:${z.type}:${z.file}`);
    rbldnsd = spawn(RBLDNSD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    rbldnsd.stdout!.on('data', (d) => (rbldnsdOutput += d));
    rbldnsd.stderr!.on('data', (d) => (rbldnsdOutput += d));
    rbl = new UdpClient(port);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await rbl.query('ip4.compat.test', 'SOA', 300);
        break;
      } catch (err) {
        if (Date.now() > deadline || rbldnsd.exitCode !== null) throw new Error(`rbldnsd did not start: ${(err as Error).message}\n${rbldnsdOutput}`);
      }
    }

    zones = ZoneSet.fromConfig(
      Object.entries(ZONES).map(([name, z]) => ({ name, type: z.type, file: path.join(dir, z.file), ttl: 35 * 60_000 })),
      { watch: false, onMalformed: (m) => malformed.push(m) },
    );
    await zones.load();
    server = await startZoneServer(zones, { address: '127.0.0.1', port: 0 }, silentLogger());
    ours = new UdpClient(server.address().port);
  });

  after(async () => {
    rbl?.close();
    ours?.close();
    await server?.close();
    zones?.close();
    if (rbldnsd && rbldnsd.exitCode === null) {
      const exited = new Promise((resolve) => rbldnsd!.once('exit', resolve));
      rbldnsd.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
      if (rbldnsd.exitCode === null) rbldnsd.kill('SIGKILL');
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('ZoneMirror answers A and TXT as rbldnsd does', async () => {
    const names = queryNames();
    const diffs: string[] = [];
    let listed = 0;
    for (const name of names) {
      for (const type of ['A', 'TXT'] as const) {
        const r = await rbl.query(name, type);
        const m = fromLookup(zones.answer(name, type), name, type);
        if (r.rcode === 'NOERROR' && r.answers.length) listed++;
        const theirs = { rcode: r.rcode, answers: r.answers };
        if (JSON.stringify(theirs) !== JSON.stringify(m)) diffs.push(`${type} ${name}: rbldnsd ${JSON.stringify(theirs)} mirror ${JSON.stringify(m)}`);
      }
    }
    assert.deepEqual(diffs, []);
    // The list must exercise both sides: many listed names and many unlisted ones.
    assert.ok(listed > 100 && listed < names.length * 2 - 100, `listed answers: ${listed} of ${names.length * 2}`);
  });

  test('zone-server answers every query type as rbldnsd does (UDP)', async () => {
    const diffs: string[] = [];
    const names = queryNames();
    const types = ['A', 'TXT', 'ANY', 'MX', 'AAAA', 'SOA', 'NS'];
    for (const [i, name] of names.entries()) {
      // Every name as A and TXT; the other types on a subset and on every zone origin.
      const apex = !name.includes('.') || Object.keys(ZONES).includes(name.toLowerCase());
      for (const type of apex || i % 7 === 0 ? types : ['A', 'TXT']) {
        const [r, o] = await Promise.all([rbl.query(name, type), ours.query(name, type)]);
        if (JSON.stringify(r) !== JSON.stringify(o)) diffs.push(`${type} ${name}:\n  rbldnsd ${JSON.stringify(r)}\n  ours    ${JSON.stringify(o)}`);
      }
    }
    assert.deepEqual(diffs, []);
  });

  test('zone-server over TCP gives what rbldnsd gives over UDP', async () => {
    const port = server.address().port;
    for (const [name, type] of [
      ['3.2.1.10.ip4.compat.test', 'A'], ['6.2.1.10.ip4.compat.test', 'TXT'], ['4.2.1.10.ip4.compat.test', 'A'],
      ['a.wild.test.dn.compat.test', 'ANY'], ['ip4.compat.test', 'SOA'], ['unrelated.example', 'A'],
    ] as const) {
      assert.deepEqual(await tcpQuery(port, name, type), await rbl.query(name, type), `${type} ${name}`);
    }
  });

  test('every malformed line rbldnsd warns about is reported with its file and line', () => {
    // rbldnsd prints "file NAME(LINE): reason" for the first 5 warnings of each file.
    const warned = [...rbldnsdOutput.matchAll(/file ([^\s(]+)\((\d+)\): (.*)/g)]
      .filter((m) => !/truncated/.test(m[3])) // a long TXT is cut, not skipped: not a malformed line
      .map((m) => `${m[1]}:${m[2]}`);
    assert.ok(warned.length >= 10, `rbldnsd warnings seen: ${warned.length}\n${rbldnsdOutput}`);
    const ours = new Set(malformed.map((m) => `${path.basename(m.file)}:${m.line}`));
    assert.deepEqual(warned.filter((w) => !ours.has(w)), []);
  });

  test('after a reload (SIGHUP for rbldnsd, a rename for the mirror) both serve the new data', async () => {
    const file = path.join(dir, ZONES['nested.ip4.compat.test'].file);
    fs.writeFileSync(`${file}.tmp`, '1.2.3.5 :9:reloaded $\n!1.2.3.4\n1.2.3.0/24 :10:net\n', { mode: 0o644 });
    fs.renameSync(`${file}.tmp`, file);
    rbldnsd!.kill('SIGHUP');
    const mirror = zones.find('nested.ip4.compat.test')!;
    assert.equal(await mirror.reload(), true);
    const names = ['4.3.2.1', '5.3.2.1', '6.3.2.1', '1.4.2.1'].map((n) => `${n}.nested.ip4.compat.test`);
    // rbldnsd reloads asynchronously: wait until it serves the new file.
    const deadline = Date.now() + 5000;
    while ((await rbl.query(names[1], 'A')).rcode !== 'NOERROR') {
      assert.ok(Date.now() < deadline, 'rbldnsd did not reload on SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const name of names) {
      for (const type of ['A', 'TXT'] as const) {
        const r = await rbl.query(name, type);
        assert.deepEqual(await ours.query(name, type), r, `${type} ${name}`);
        assert.deepEqual(fromLookup(zones.answer(name, type), name, type), { rcode: r.rcode, answers: r.answers }, `${type} ${name}`);
      }
    }
  });
});
