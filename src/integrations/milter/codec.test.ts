// The milter codec on its own: packets split across reads and several in one read, the bounds
// checked before data arrives, and the parsers refusing what is malformed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { C, MAX_PACKET, MilterProtocolError, PacketReader, encode, envelopeAddress, parseConnect, parseHeader, parseMacros, parseOptNeg, reply } from './codec.js';

const raw = (cmd: string, data: string) => {
  const d = Buffer.from(data, 'latin1');
  const b = Buffer.alloc(5);
  b.writeUInt32BE(d.length + 1);
  b[4] = cmd.charCodeAt(0);
  return Buffer.concat([b, d]);
};

test('packets split anywhere and packets back to back come out whole and in order', () => {
  const stream = Buffer.concat([raw('H', 'a.example\0'), raw('M', '<x@y>\0'), raw('N', '')]);
  for (let cut = 1; cut < stream.length; cut++) {
    const r = new PacketReader();
    const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
    assert.deepEqual(got.map((p) => [p.cmd, p.data.toString('latin1')]), [['H', 'a.example\0'], ['M', '<x@y>\0'], ['N', '']], `cut at ${cut}`);
    assert.equal(r.pending, 0);
  }
});

test('a length over the bound is refused from the first five bytes; a body chunk may be larger; length 0 is malformed', () => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(MAX_PACKET + 2);
  head[4] = 'L'.charCodeAt(0);
  assert.throws(() => new PacketReader().push(head), MilterProtocolError);
  head[4] = C.BODY.charCodeAt(0);
  assert.deepEqual(new PacketReader().push(head), [], 'a 64 KiB body chunk waits for its data');
  assert.throws(() => new PacketReader().push(Buffer.from([0, 0, 0, 0])), /length 0/);
});

test('parsers: OPTNEG, CONNECT, MACRO, HEADER, addresses; malformed input throws MilterProtocolError', () => {
  const o = Buffer.alloc(12);
  o.writeUInt32BE(6, 0);
  o.writeUInt32BE(0x1ff, 4);
  o.writeUInt32BE(0x1fffff, 8);
  assert.deepEqual(parseOptNeg(o), { version: 6, actions: 0x1ff, protocol: 0x1fffff });
  assert.throws(() => parseOptNeg(o.subarray(0, 8)), MilterProtocolError);
  const conn = Buffer.concat([Buffer.from('host.example\x004'), Buffer.from([0x9c, 0x40]), Buffer.from('192.0.2.7\0')]);
  assert.deepEqual(parseConnect(conn), { hostname: 'host.example', family: '4', port: 40000, address: '192.0.2.7' });
  assert.equal(parseConnect(Buffer.from('host\0U')).family, 'U');
  assert.throws(() => parseConnect(Buffer.from('host\x004\x00')), /truncated/);
  assert.deepEqual(parseMacros(Buffer.from('Cj\0mx.test\0{client_addr}\x00192.0.2.7\0')), { forCmd: 'C', macros: [['j', 'mx.test'], ['client_addr', '192.0.2.7']] });
  assert.throws(() => parseMacros(Buffer.from('Cj\0')), /without a value/);
  assert.throws(() => parseMacros(Buffer.from('Cj\0v')), /NUL/);
  assert.deepEqual(parseHeader(Buffer.from('Subject\0 hi\0')), { name: 'Subject', value: ' hi' });
  assert.throws(() => parseHeader(Buffer.from('\0x\0')), MilterProtocolError);
  assert.equal(envelopeAddress(Buffer.from('<a@b.example>\0SIZE=10\0'), 'MAIL'), 'a@b.example');
  assert.equal(envelopeAddress(Buffer.from('<>\0'), 'MAIL'), '');
});

test('replies: length, command byte, NUL-terminated strings, big-endian indexes', () => {
  assert.deepEqual(encode('c'), Buffer.from([0, 0, 0, 1, 0x63]));
  const y = reply.replyCode('550 5.7.1 no');
  assert.equal(y.readUInt32BE(0), y.length - 4);
  assert.equal(y.subarray(4).toString('latin1'), 'y550 5.7.1 no\0');
  const m = reply.chgHeader(2, 'X-Spam-Flag', '');
  assert.equal(m.subarray(5, 9).readUInt32BE(0), 2);
  assert.equal(m.subarray(9).toString('latin1'), 'X-Spam-Flag\0\0');
});
