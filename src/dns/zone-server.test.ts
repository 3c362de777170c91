import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import packet from 'dns-packet';
import { silentLogger } from '../log.js';
import { answerQuery, startZoneServer, type ServedZone, type ServedZones } from './zone-server.js';
import { parseZone, type LoadedZone, type ZoneType } from './zones/zone.js';
import { relativeName } from './zones/zone-mirror.js';

function zone(origin: string, type: ZoneType, text: string, now?: number): ServedZone {
  const z = parseZone(Buffer.from(text), { type, file: origin, defaultTtl: 2100, fileTime: 1700000000, now });
  return { origin, snapshot: () => z };
}

function served(...zones: ServedZone[]): ServedZones {
  return { find: (name) => zones.find((z) => relativeName(name, z.origin) !== undefined) };
}

const many = Array.from({ length: 30 }, (_, i) => `1.2.3.4 :2:text number ${i} padded to make the answer long`).join('\n');
const ZONES = served(
  zone('bl.test', 'ip4set', `$SOA 3600 ns1.example.net hostmaster.example.net 0 2h 1h 1w 600\n$NS 1d ns1.example.net ns2.example.net\n:3:Listed $\n10.0.0.0/8\n192.0.2.1 :4:\n${many}\n`),
  zone('plain.test', 'dnset', 'example.com\n'),
  { origin: 'unloaded.test', snapshot: (): LoadedZone | undefined => undefined },
  zone('old.test', 'ip4set', '$TIMESTAMP 2020:01:01 +1d\n1.1.1.1\n', Date.UTC(2020, 0, 1)),
);

function query(name: string, type: string, more: Partial<packet.Packet> = {}): Buffer {
  return packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ name, type: type as packet.RecordType, class: 'IN' }], ...more });
}

function ask(q: Buffer, tcp = false) {
  const res = answerQuery(q, ZONES, { tcp });
  assert.ok(res, 'a reply');
  const p = packet.decode(res) as packet.DecodedPacket & { rcode: string };
  return { rcode: p.rcode, aa: p.flag_aa, rd: p.flag_rd, tc: p.flag_tc, id: p.id, answers: p.answers ?? [], authorities: p.authorities ?? [], p };
}

test('listed names: A and TXT answers, authoritative, NS records alongside', () => {
  const a = ask(query('1.0.0.10.bl.test', 'A'));
  assert.deepEqual([a.rcode, a.aa, a.rd, a.id], ['NOERROR', true, true, 4242]);
  assert.deepEqual(a.answers.map((r) => [r.name, r.type, (r as { ttl: number }).ttl, (r as { data: unknown }).data]), [['1.0.0.10.bl.test', 'A', 2100, '127.0.0.3']]);
  assert.deepEqual(a.authorities.map((r) => (r as { data: unknown }).data), ['ns1.example.net', 'ns2.example.net']);
  const t = ask(query('1.0.0.10.BL.test', 'TXT'));
  assert.equal(t.answers[0].name, '1.0.0.10.BL.test', 'the name as asked');
  assert.equal(String((t.answers[0] as packet.TxtAnswer).data), 'Listed 10.0.0.1');
  const any = ask(query('1.0.0.10.bl.test', 'ANY'));
  assert.deepEqual(any.answers.map((r) => r.type).sort(), ['A', 'TXT']);
});

test('negative answers: NXDOMAIN, NODATA, both with the SOA at its minimum TTL', () => {
  const nx = ask(query('1.0.0.11.bl.test', 'A'));
  assert.deepEqual([nx.rcode, nx.aa, nx.answers.length], ['NXDOMAIN', true, 0]);
  assert.deepEqual(nx.authorities.map((r) => [r.type, (r as { ttl: number }).ttl, (r as packet.SoaAnswer).data.serial]), [['SOA', 600, 1700000000]]);
  const nodata = ask(query('1.2.0.192.bl.test', 'TXT')); // listed with ":4:", no TXT
  assert.deepEqual([nodata.rcode, nodata.answers.length, nodata.authorities[0]?.type], ['NOERROR', 0, 'SOA']);
  assert.deepEqual([ask(query('1.0.0.10.bl.test', 'MX')).rcode, ask(query('1.0.0.10.bl.test', 'MX')).answers.length], ['NOERROR', 0]);
  const plain = ask(query('www.example.com.plain.test', 'A'));
  assert.deepEqual([plain.rcode, plain.authorities.length], ['NXDOMAIN', 0]);
});

test('the origin: SOA and NS when the file has them, REFUSED when not', () => {
  const soa = ask(query('bl.test', 'SOA'));
  assert.deepEqual([soa.rcode, soa.answers[0]?.type, (soa.answers[0] as { ttl: number }).ttl], ['NOERROR', 'SOA', 3600]);
  assert.deepEqual(ask(query('bl.test', 'NS')).answers.map((r) => (r as { data: unknown }).data), ['ns1.example.net', 'ns2.example.net']);
  assert.equal(ask(query('bl.test', 'A')).rcode, 'NOERROR');
  assert.equal(ask(query('plain.test', 'SOA')).rcode, 'REFUSED');
  assert.equal(ask(query('plain.test', 'ANY')).rcode, 'REFUSED');
  assert.equal(ask(query('plain.test', 'A')).rcode, 'NOERROR');
});

test('refusals and failures: outside every zone, not loaded, expired, other classes and opcodes, transfers', () => {
  const out = ask(query('example.org', 'A'));
  assert.deepEqual([out.rcode, out.aa], ['REFUSED', false]);
  assert.equal(ask(query('1.1.1.1.unloaded.test', 'A')).rcode, 'SERVFAIL');
  assert.equal(ask(query('1.1.1.1.old.test', 'A')).rcode, 'SERVFAIL');
  const ch = query('1.0.0.10.bl.test', 'TXT');
  ch.writeUInt16BE(3, ch.length - 2); // class CH
  assert.deepEqual([ask(ch).rcode, ask(ch).p.questions?.[0].class], ['REFUSED', 'CH']);
  const odd = query('1.0.0.10.bl.test', 'TXT');
  odd.writeUInt16BE(77, odd.length - 2); // a class dns-packet does not know: echoed as sent
  assert.equal(answerQuery(odd, ZONES)!.readUInt16BE(odd.length - 2), 77);
  assert.equal(ask(query('bl.test', 'AXFR')).rcode, 'NOTIMP');
  const status = query('1.0.0.10.bl.test', 'A');
  status.writeUInt16BE(status.readUInt16BE(2) | (2 << 11), 2); // opcode STATUS
  assert.equal(ask(status).rcode, 'NOTIMP');
});

test('malformed packets get FORMERR; responses and runts get nothing', () => {
  const broken = Buffer.from(query('1.0.0.10.bl.test', 'A').subarray(0, 20));
  const r = ask(broken);
  assert.deepEqual([r.rcode, r.id], ['FORMERR', 4242]);
  const two = packet.encode({ type: 'query', id: 1, questions: [{ name: 'a.bl.test', type: 'A' }, { name: 'b.bl.test', type: 'A' }] });
  assert.equal(ask(two).rcode, 'FORMERR');
  const binary = query('xx.bl.test', 'A');
  binary[13] = 0xff; // a label byte that is not UTF-8
  assert.equal(ask(binary).rcode, 'FORMERR');
  assert.equal(answerQuery(Buffer.alloc(11), ZONES), undefined);
  assert.equal(answerQuery(packet.encode({ type: 'response', id: 1, questions: [{ name: 'bl.test', type: 'A' }] }), ZONES), undefined);
});

test('an answer too big for UDP is truncated (TC) and complete over TCP or with EDNS', () => {
  const udp = ask(query('4.3.2.1.bl.test', 'TXT'));
  assert.deepEqual([udp.tc, udp.answers.length], [true, 0]);
  const tcp = ask(query('4.3.2.1.bl.test', 'TXT'), true);
  assert.deepEqual([tcp.tc, tcp.answers.length], [false, 30]);
  const edns = ask(query('4.3.2.1.bl.test', 'TXT', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as packet.Answer] }));
  assert.deepEqual([edns.tc, edns.answers.length], [false, 30]);
});

test('garbage never throws: random and mutated packets', () => {
  let x = 12345;
  const rnd = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
  const seeds = [query('1.0.0.10.bl.test', 'A'), query('example.com.plain.test', 'TXT'), query('bl.test', 'SOA')];
  for (let i = 0; i < 4000; i++) {
    let buf: Buffer;
    if (i % 2) {
      buf = Buffer.alloc(rnd(80));
      for (let j = 0; j < buf.length; j++) buf[j] = rnd(256);
    } else {
      buf = Buffer.from(seeds[i % 3]);
      for (let k = rnd(4) + 1; k > 0; k--) buf[rnd(buf.length)] = rnd(256);
      if (i % 6 === 0) buf = buf.subarray(0, rnd(buf.length + 1));
    }
    const res = answerQuery(buf, ZONES);
    if (res) {
      assert.equal(res.readUInt16BE(0), buf.readUInt16BE(0), 'the id is echoed');
      assert.ok(res.readUInt16BE(2) & 0x8000, 'a response');
    }
  }
});

test('startZoneServer: UDP and TCP on one port, several messages per TCP connection, garbage survived', async () => {
  const server = await startZoneServer(ZONES, { address: '127.0.0.1', port: 0 }, silentLogger());
  const { port } = server.address();
  try {
    const udp = dgram.createSocket('udp4');
    const reply = new Promise<Buffer>((resolve) => udp.once('message', resolve));
    // Garbage first: the server must still answer what follows.
    udp.send(Buffer.from('garbage'), port, '127.0.0.1');
    udp.send(Buffer.alloc(30, 0xff), port, '127.0.0.1');
    udp.send(query('1.0.0.10.bl.test', 'A'), port, '127.0.0.1');
    let first = packet.decode(await reply);
    // The FORMERR for the 30 bytes of 0xff may come first.
    if ((first as { rcode?: string }).rcode === 'FORMERR') first = packet.decode(await new Promise<Buffer>((resolve) => udp.once('message', resolve)));
    assert.deepEqual(first.answers?.map((a) => (a as { data: unknown }).data), ['127.0.0.3']);
    udp.close();

    const answers = await new Promise<packet.Packet[]>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      const got: packet.Packet[] = [];
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('connect', () => {
        const two = Buffer.concat([packet.streamEncode({ id: 1, type: 'query', questions: [{ name: '1.0.0.10.bl.test', type: 'A' }] }), packet.streamEncode({ id: 2, type: 'query', questions: [{ name: '4.3.2.1.bl.test', type: 'TXT' }] })]);
        // Written in two uneven pieces: framing must not depend on write boundaries.
        sock.write(two.subarray(0, 5));
        setTimeout(() => sock.write(two.subarray(5)), 20);
      });
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === 2) {
          sock.end();
          resolve(got);
        }
      });
    });
    assert.deepEqual(answers.map((a) => [a.id, a.answers?.length]), [[1, 1], [2, 30]]);
  } finally {
    await server.close();
  }
});
