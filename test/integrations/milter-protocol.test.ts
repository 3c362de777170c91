// `kind: milter` on a raw socket, as libmilter's MTA side speaks it (the packets are written
// here byte by byte, not with our codec): option negotiation (what we take of what the MTA
// offers, and an MTA offering less), a whole session for GTUBE (refused with the SMTP path's
// reply) and for ham (our fields inserted, a forged one removed, accepted), then what no MTA
// should send: a bad version, commands before negotiation, truncated, oversized and zero-length
// packets, oversized macros, an unknown command, a body over smtp.max_message_size, a client
// that vanishes mid-body, a network outside `allow`. After each, the listener answers the next
// connection.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { freePorts, sleep, tcpAccepts, waitFor } from '../helpers/wait.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const MAX_SIZE = 64 * 1024;
const SENDER = 'news@sender.example';

// ---- the MTA's side, by hand ------------------------------------------------------------------

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const packet = (cmd: string, data: Buffer | string = Buffer.alloc(0)) => {
  const d = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  return Buffer.concat([u32(d.length + 1), Buffer.from(cmd, 'latin1'), d]);
};
const z = (...s: string[]) => s.map((x) => `${x}\0`).join('');
/** What Postfix 3.7 offers: every action (0x1ff) and every protocol step it knows (0x1fffff). */
const optneg = (version = 6, actions = 0x1ff, protocol = 0x1fffff) => packet('O', Buffer.concat([u32(version), u32(actions), u32(protocol)]));
const connectPkt = (ip: string, port = 40000) => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return packet('C', Buffer.concat([Buffer.from(z('client.example.net'), 'latin1'), Buffer.from('4'), p, Buffer.from(z(ip), 'latin1')]));
};

interface Reply {
  cmd: string;
  data: Buffer;
}

/** One MTA connection: writes packets, reads the filter's replies as they come. */
class Mta {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number | string, host = '127.0.0.1'): Promise<Mta> {
    return new Promise((resolve, reject) => {
      const s = typeof port === 'string' ? net.connect({ path: port }, () => resolve(new Mta(s))) : net.connect({ port, host }, () => resolve(new Mta(s)));
      s.once('error', reject);
    });
  }

  write(...b: Buffer[]): void {
    this.socket.write(Buffer.concat(b));
  }

  /** The next reply packet; undefined when the filter closed instead. */
  async next(timeoutMs = 15_000): Promise<Reply | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length >= 4 + len) {
          const r = { cmd: String.fromCharCode(this.buf[4]!), data: this.buf.subarray(5, 4 + len) };
          this.buf = this.buf.subarray(4 + len);
          return r;
        }
      }
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error(`no reply in ${timeoutMs} ms (have ${this.buf.length} bytes)`);
      await new Promise<void>((r) => {
        this.waiting = r;
        setTimeout(r, 200);
      });
      this.waiting = undefined;
    }
  }

  /** Replies up to and including the first final one (accept, continue, reject, tempfail, replycode, discard). */
  async untilFinal(): Promise<Reply[]> {
    const out: Reply[] = [];
    for (;;) {
      const r = await this.next();
      if (!r) throw new Error(`closed after ${out.map((x) => x.cmd).join('')}`);
      out.push(r);
      if ('acrtyd'.includes(r.cmd)) return out;
    }
  }

  /** True when the filter closes the connection within `ms` without sending anything more. */
  async closesSilently(ms = 5000): Promise<boolean> {
    const r = await this.next(ms).catch(() => 'timeout' as const);
    return r === undefined;
  }

  end(): void {
    this.socket.destroy();
  }
}

const text = (r: Reply) => r.data.toString('latin1').replace(/\0+$/, '');
/** CHGHEADER / INSHEADER: index, name, value. */
const indexed = (r: Reply) => {
  const [name, value] = r.data.subarray(4).toString('latin1').split('\0');
  return { index: r.data.readUInt32BE(0), name: name!, value: value! };
};

/** Negotiates as Postfix does and sends a session up to (and with) RCPT. */
async function envelope(m: Mta, rcpt: string = USERS.alice.address, ip = '127.0.0.1'): Promise<void> {
  m.write(optneg());
  assert.equal((await m.next())?.cmd, 'O');
  m.write(packet('D', `C${z('j', 'mx.postfix.test', '{daemon_name}', 'smtpd')}`), connectPkt(ip));
  assert.equal((await m.next())?.cmd, 'c', 'CONNECT: continue');
  m.write(packet('H', z('client.example.net')));
  assert.equal((await m.next())?.cmd, 'c', 'HELO: continue');
  m.write(packet('D', `M${z('i', 'ABC123')}`), packet('M', z(`<${SENDER}>`, 'SIZE=100')));
  assert.equal((await m.next())?.cmd, 'c', 'MAIL: continue');
  m.write(packet('R', z(`<${rcpt}>`)));
  assert.equal((await m.next())?.cmd, 'c', 'RCPT: continue');
}

/** Headers (no replies: NR_HDR and NR_EOH were negotiated) and the body (answered), then end of message. */
async function message(m: Mta, raw: string): Promise<void> {
  const [head, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
  const fields = head.split(/\r\n(?![ \t])/).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).replace(/\r\n/g, '\n')] as const);
  // HDR_LEADSPC: the value as written after the colon, leading space included.
  for (const [n, v] of fields) m.write(packet('L', z(n, v)));
  m.write(packet('N'), packet('B', body));
  assert.equal((await m.next())?.cmd, 'c', 'BODY: continue');
  m.write(packet('E'));
}

describe('milter listener: the protocol on a raw socket', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let port: number;
  let closedPort: number;
  let metricsPort: number;
  let socketPath = '';

  before(async () => {
    [port, closedPort, metricsPort] = await freePorts(3);
    gw = await startGateway({
      users: userMap('alice'),
      config: ({ ports, tmpDir }) => ({
        smtp: { max_message_size: MAX_SIZE },
        // A message without Date is held (the quarantine action), to see SMFIR_QUARANTINE.
        policy: { actions: { MISSING_DATE: 'quarantine' } },
        metrics: { enabled: true, address: '127.0.0.1', port: metricsPort },
        listeners: [
          ...smtpListeners(ports),
          { name: 'milter', kind: 'milter', port },
          { name: 'milter-closed', kind: 'milter', port: closedPort, allow: ['192.0.2.0/24'] },
          { name: 'milter-unix', kind: 'milter', path: (socketPath = path.join(tmpDir, 'milter.sock')) },
        ],
      }),
    });
    await waitFor('the milter listener', () => tcpAccepts(port));
  });
  after(async () => {
    await gw?.cleanup();
  });

  /** The listener still serves: a fresh connection negotiates. */
  async function stillServes(): Promise<void> {
    const m = await Mta.connect(port);
    m.write(optneg());
    const r = await m.next();
    assert.equal(r?.cmd, 'O', 'the listener answers the next connection');
    m.end();
  }

  it('negotiation: version 6, the actions and steps we use out of what Postfix offers', async () => {
    const m = await Mta.connect(port);
    m.write(optneg());
    const r = (await m.next())!;
    assert.equal(r.cmd, 'O');
    assert.equal(r.data.readUInt32BE(0), 6);
    // ADDHDRS | CHGBODY | CHGHDRS | QUARANTINE
    assert.equal(r.data.readUInt32BE(4), 0x01 | 0x02 | 0x10 | 0x20);
    // NR_HDR | NOUNKNOWN | NODATA | NR_EOH | HDR_LEADSPC
    assert.equal(r.data.readUInt32BE(8), 0x80 | 0x100 | 0x200 | 0x40000 | 0x100000);
    m.end();
  });

  it('GTUBE: refused at end of message with the SMTP path\'s reply; logged and counted', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    const subject = marker('milter-gtube');
    await message(m, makeMessage({ from: SENDER, to: USERS.alice.address, subject, body: `GTUBE:\r\n${GTUBE}\r\n` }));
    const replies = await m.untilFinal();
    const last = replies.at(-1)!;
    assert.equal(last.cmd, 'y', `replies: ${replies.map((x) => x.cmd).join('')}`);
    assert.match(text(last), /^554 5\.7\.1 Error: message refused by content policy \(score \d+(\.\d+)?: GTUBE/);
    m.write(packet('Q'));
    assert.ok(await m.closesSilently(), 'QUIT: closed');
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.component === 'milter' && l.queue_id === 'ABC123' && l.action === 'reject'));
    assert.equal(line.sender, SENDER);
    assert.deepEqual(line.recipients, [USERS.alice.address]);
    assert.ok((line.symbols as Array<{ name: string }>).some((s) => s.name === 'GTUBE'), JSON.stringify(line.symbols));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^portcullis_scan_requests_total\{listener="milter",kind="milter",outcome="reject"\} [1-9]/m);
  });

  it('ham: our Authentication-Results and X-Spam-* inserted on top, a forged X-Spam-Flag removed, accepted', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    const raw = makeMessage({ from: SENDER, to: USERS.alice.address, subject: marker('milter-ham'), extraHeaders: ['X-Spam-Flag: YES'], body: 'Hello Alice,\r\nthe minutes of Tuesday are below.\r\n' });
    await message(m, raw);
    const replies = await m.untilFinal();
    assert.equal(replies.at(-1)!.cmd, 'a', `replies: ${replies.map((x) => x.cmd).join('')}`);
    const removed = replies.filter((r) => r.cmd === 'm').map(indexed);
    assert.deepEqual(removed, [{ index: 1, name: 'X-Spam-Flag', value: '' }]);
    const inserted = replies.filter((r) => r.cmd === 'i').map(indexed);
    assert.ok(inserted.every((h) => h.index === 0));
    const byName = Object.fromEntries(inserted.map((h) => [h.name, h.value]));
    assert.match(byName['X-Spam-Status']!, /^ No, score=-?\d+(\.\d+)? required=5\n\ttests=/);
    assert.match(byName['Authentication-Results']!, /^ mx\.example\.test;/);
    assert.equal(byName['X-Spam-Flag'], undefined);
    assert.ok(!replies.some((r) => r.cmd === 'b'), 'no body replacement for a plain message');
    // The same connection carries the next message (after ABORT of a half-sent one).
    m.write(packet('D', `M${z('i', 'DEF456')}`), packet('M', z(`<${SENDER}>`)));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('A'));
    m.write(packet('M', z(`<${SENDER}>`)));
    assert.equal((await m.next())?.cmd, 'c', 'after ABORT the next MAIL is served');
    // QUIT_NC: the MTA reuses the connection for its next SMTP session, from a new CONNECT on.
    m.write(packet('A'), packet('K'), connectPkt('127.0.0.8'));
    assert.equal((await m.next())?.cmd, 'c', 'CONNECT after QUIT_NC');
    m.write(packet('H', z('other.example.net')));
    assert.equal((await m.next())?.cmd, 'c');
    m.end();
  });

  it('a symbol whose action is quarantine: SMFIR_QUARANTINE (Postfix\'s hold queue), then accept', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    const raw = makeMessage({ from: SENDER, to: USERS.alice.address, subject: marker('milter-hold') }).replace(/^Date: [^\r]*\r\n/m, '');
    await message(m, raw);
    const replies = await m.untilFinal();
    assert.deepEqual(replies.slice(-2).map((r) => r.cmd), ['q', 'a'], `replies: ${replies.map((x) => x.cmd).join('')}`);
    assert.match(text(replies.at(-2)!), /^Portcullis: score -?[\d.]+ \(.*MISSING_DATE/);
    m.end();
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.component === 'milter' && l.action === 'quarantine'));
    assert.ok((line.symbols as Array<{ name: string }>).some((s) => s.name === 'MISSING_DATE'));
  });

  it('an authenticated submission ({auth_authen}) is written into Authentication-Results as auth=pass', async () => {
    const m = await Mta.connect(port);
    m.write(optneg());
    assert.equal((await m.next())?.cmd, 'O');
    m.write(packet('D', `C${z('{daemon_name}', 'submission')}`), connectPkt('127.0.0.7'));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('H', z('laptop.example.net')));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('D', `M${z('i', 'AUTH42', '{auth_authen}', 'Alice@Example.test')}`), packet('M', z(`<${USERS.alice.address}>`)));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('R', z('<someone@elsewhere.test>')));
    assert.equal((await m.next())?.cmd, 'c');
    await message(m, makeMessage({ from: USERS.alice.address, to: 'someone@elsewhere.test', subject: marker('milter-auth') }));
    const replies = await m.untilFinal();
    assert.equal(replies.at(-1)!.cmd, 'a');
    const ar = replies.filter((r) => r.cmd === 'i').map(indexed).find((h) => h.name === 'Authentication-Results');
    assert.match(ar!.value, /^ mx\.example\.test;\n\tauth=pass smtp\.auth=alice@example\.test/);
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.queue_id === 'AUTH42'));
    assert.equal(line.user, 'alice@example.test');
    m.end();
  });

  it('an MTA offering fewer actions and steps: we take what is there, answer each header, and tag without changes we may not make', async () => {
    const m = await Mta.connect(port);
    m.write(optneg(6, 0x01, 0));
    const r = (await m.next())!;
    assert.equal(r.data.readUInt32BE(4), 0x01, 'only ADDHDRS');
    assert.equal(r.data.readUInt32BE(8), 0, 'no protocol steps skipped');
    m.write(connectPkt('127.0.0.1'));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('H', z('client.example.net')));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('M', z(`<${SENDER}>`)));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('R', z(`<${USERS.alice.address}>`)));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('T'));
    assert.equal((await m.next())?.cmd, 'c', 'DATA answered (NODATA not negotiated)');
    m.write(packet('L', z('Subject', 'hello')));
    assert.equal((await m.next())?.cmd, 'c', 'each header answered (NR_HDR not negotiated)');
    m.write(packet('L', z('X-Spam-Flag', 'YES')));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('N'));
    assert.equal((await m.next())?.cmd, 'c', 'EOH answered');
    m.write(packet('B', 'Hello\r\n'));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('E'));
    const replies = await m.untilFinal();
    assert.deepEqual([...new Set(replies.map((x) => x.cmd))].sort(), ['a', 'i'], 'inserts and accept only: no CHGHEADER without CHGHDRS');
    // Without HDR_LEADSPC the values carry no leading space.
    assert.match(indexed(replies.find((x) => x.cmd === 'i' && indexed(x).name === 'X-Spam-Status')!).value, /^No, /);
    m.end();
    await waitFor('degraded warning', () => gw.logs.find((l) => l.event === 'milter_degraded' && JSON.stringify(l.missing).includes('CHGBODY')));
  });

  it('a body over smtp.max_message_size is refused with 552 5.3.4 and nothing more is kept', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    m.write(packet('L', z('Subject', ' big')), packet('N'));
    const chunk = 'x'.repeat(60_000) + '\r\n';
    m.write(packet('B', chunk));
    assert.equal((await m.next())?.cmd, 'c');
    m.write(packet('B', chunk));
    const r = (await m.next())!;
    assert.equal(r.cmd, 'y');
    assert.match(text(r), /^552 5\.3\.4 /);
    m.write(packet('E'));
    const end = (await m.next())!;
    assert.equal(end.cmd, 'y');
    assert.match(text(end), /^552 5\.3\.4 /);
    m.end();
  });

  const hostile: Array<[string, (m: Mta) => void]> = [
    ['a protocol version below 2', (m) => m.write(optneg(1))],
    ['a command before negotiation', (m) => m.write(packet('H', z('x')))],
    ['a zero-length packet', (m) => m.write(optneg(), u32(0))],
    ['a packet length of 2 GiB (refused before its data arrives)', (m) => m.write(optneg(), u32(0x7fffffff), Buffer.from('D'))],
    ['a macro packet over 64 KiB', (m) => m.write(optneg(), packet('D', `C${z('{client_addr}', 'x'.repeat(70_000))}`))],
    ['a macro packet with a name and no value', (m) => m.write(optneg(), packet('D', `C${z('j')}`))],
    ['an unknown command', (m) => m.write(optneg(), packet('Z', 'whatever'))],
    ['a CONNECT with an unknown family', (m) => m.write(optneg(), packet('C', `${z('host')}X`))],
    ['a second negotiation', (m) => m.write(optneg(), optneg())],
  ];
  for (const [what, send] of hostile) {
    it(`${what}: the connection is closed; the listener serves the next one`, async () => {
      const m = await Mta.connect(port);
      send(m);
      for (;;) {
        const r = await m.next(5000);
        if (!r) break;
        assert.equal(r.cmd, 'O', `only the negotiation is answered, got '${r.cmd}'`);
      }
      assert.ok(m.closed);
      await stillServes();
    });
  }

  it('a truncated packet, then silence until the MTA gives up: nothing answered, nothing kept, still serving', async () => {
    const m = await Mta.connect(port);
    m.write(optneg());
    assert.equal((await m.next())?.cmd, 'O');
    // Half of a HELO packet.
    m.write(packet('H', z('client.example.net')).subarray(0, 9));
    await sleep(300);
    m.end();
    await stillServes();
  });

  it('an MTA that vanishes mid-body: logged, the listener serves the next connection', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    m.write(packet('L', z('Subject', ' gone')), packet('N'), packet('B', 'partial body\r\n'));
    assert.equal((await m.next())?.cmd, 'c');
    m.end();
    await waitFor('milter_vanished', () => gw.logs.find((l) => l.event === 'milter_vanished' && l.sender === SENDER));
    await stillServes();
    assert.equal(gw.logs.filter((l) => l.level === 'fatal' || l.event === 'milter_internal_error').length, 0);
  });

  it('a unix-socket listener: negotiates and judges like the TCP one (no allow list: the file mode decides)', async () => {
    await waitFor('the unix socket', () => Mta.connect(socketPath).then((m) => (m.end(), true), () => false));
    const m = await Mta.connect(socketPath);
    m.write(optneg());
    assert.equal((await m.next())?.cmd, 'O');
    // A local submission: family 'L', the address from {client_addr} when given.
    m.write(packet('D', `C${z('{client_addr}', '127.0.0.1')}`), packet('C', Buffer.concat([Buffer.from(z('localhost'), 'latin1'), Buffer.from('L'), Buffer.from([0, 0]), Buffer.from(z('/var/run/x'), 'latin1')])));
    assert.equal((await m.next())?.cmd, 'c');
    m.end();
  });

  it('an MTA outside `allow` is closed without a word', async () => {
    const m = await Mta.connect(closedPort);
    m.write(optneg());
    assert.ok(await m.closesSilently(), 'closed');
    await waitFor('milter_refused', () => gw.logs.find((l) => l.event === 'milter_refused'));
  });
});

describe('milter listener in observe mode (policy.observe)', { timeout: 120_000 }, () => {
  let gw: Gateway;
  let port: number;
  before(async () => {
    [port] = await freePorts(1);
    gw = await startGateway({
      users: userMap('alice'),
      config: ({ ports }) => ({ policy: { observe: true }, listeners: [...smtpListeners(ports), { name: 'milter', kind: 'milter', port }] }),
    });
    await waitFor('the milter listener', () => tcpAccepts(port));
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('GTUBE is accepted tagged as spam, and the refusal it would have been is logged', async () => {
    const m = await Mta.connect(port);
    await envelope(m);
    await message(m, makeMessage({ from: SENDER, to: USERS.alice.address, subject: marker('milter-observe'), body: `GTUBE:\r\n${GTUBE}\r\n` }));
    const replies = await m.untilFinal();
    assert.equal(replies.at(-1)!.cmd, 'a', `replies: ${replies.map((x) => x.cmd).join('')}`);
    const inserted = Object.fromEntries(replies.filter((r) => r.cmd === 'i').map(indexed).map((h) => [h.name, h.value]));
    assert.equal(inserted['X-Spam-Flag'], ' YES');
    assert.match(inserted['X-Spam-Status']!, /^ Yes, score=\d+/);
    m.end();
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.component === 'milter' && l.queue_id === 'ABC123'));
    assert.equal(line.observe, 'would reject');
    assert.match(JSON.stringify(line.would_reply), /554 5\.7\.1 Error: message refused by content policy/);
  });
});
