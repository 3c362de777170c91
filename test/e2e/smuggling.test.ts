// SMTP smuggling (CVE-2023-51764 family): every false end-of-data sequence in
// shared/conformance/smtp/smtp-smuggling-eod-sequences.yaml, followed by a smuggled transaction,
// then the real end of data. At most ONE message may be accepted and the smuggled commands must
// never get replies of their own; if accepted, the smuggled text is inside that one message.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eodSequences, hexBytes, type EodSequence } from '../helpers/conformance.js';
import { EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { type Reply, SmtpClient } from '../helpers/smtp-client.js';
import { sleep } from '../helpers/wait.js';

const VICTIM = USERS.alice.address;

interface Outcome {
  /** Every reply after the 354, up to and excluding the 221 to our QUIT. */
  after354: Reply[];
  closed: boolean;
  m: string;
  c: SmtpClient;
}

async function smuggle(gw: Gateway, seq: EodSequence): Promise<Outcome> {
  const m = marker(`smug-${seq.id}`);
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.ehlo();
  const mail = await c.cmd(`MAIL FROM:<${EXT_SENDER}>`);
  const rcpt = await c.cmd(`RCPT TO:<${VICTIM}>`);
  const data = await c.cmd('DATA');
  assert.deepEqual([mail.code, rcpt.code, data.code], [250, 250, 354], c.describe());
  const payload = Buffer.concat([
    Buffer.from(`From: <${EXT_SENDER}>\r\nTo: <${VICTIM}>\r\nSubject: ${m}\r\n\r\nvisible text ${m}`, 'latin1'),
    hexBytes(seq.bytes_hex),
    Buffer.from(`MAIL FROM:<x@evil.test>\r\nRCPT TO:<${VICTIM}>\r\nDATA\r\nsmuggled-${m}\r\n`, 'latin1'),
    Buffer.from('\r\n.\r\n', 'latin1'),
  ]);
  c.write(payload);
  // Wait for the answer(s) to the data, then QUIT, and collect everything until 221 or close.
  const replies: Reply[] = [];
  try {
    replies.push(await c.readReply(30_000));
  } catch {
    // closed without a reply: counted below
  }
  replies.push(...(await c.collect(1000)));
  if (!c.closed) {
    c.send('QUIT');
    for (;;) {
      let r: Reply;
      try {
        r = await c.readReply(5000);
      } catch {
        break;
      }
      if (r.code === 221) break;
      replies.push(r);
    }
  }
  c.close();
  return { after354: replies, closed: c.closed, m, c };
}

function assertNotSmuggled(_gw: Gateway, seq: EodSequence, o: Outcome): { accepted: boolean } {
  const ctx = `sequence ${seq.id} (${seq.c_escaped})\n${o.c.describe()}`;
  assert.ok(o.after354.length <= 1,
    `the server answered ${o.after354.length} times after DATA: the false end-of-data split the message and the smuggled commands ran\n${ctx}`);
  const r = o.after354[0];
  assert.ok(r, `no reply at all to the end of data\n${ctx}`);
  assert.ok(r.code === 250 || (r.code >= 500 && r.code < 600), `reply to end of data must be 250 or 5xx, got ${r.raw}\n${ctx}`);
  return { accepted: r.code === 250 };
}

async function assertStoredOnce(gw: Gateway, o: Outcome, accepted: boolean): Promise<void> {
  if (accepted) {
    const stored = (await gw.waitForMail(VICTIM, o.m)).toString('latin1');
    assert.ok(stored.includes(`smuggled-${o.m}`), `the smuggled text must be inside the accepted message:\n${stored}`);
    assert.ok(stored.includes('MAIL FROM:<x@evil.test>'), `the smuggled MAIL line must be message text:\n${stored}`);
  }
  await sleep(accepted ? 300 : 800);
  const copies = gw.allMailboxFiles().filter((f) => f.content.includes(o.m));
  assert.equal(copies.length, accepted ? 1 : 0, `expected ${accepted ? 'one stored message' : 'nothing stored'}, found ${copies.length}`);
  const smuggledAlone = gw.allMailboxFiles().filter((f) => f.content.includes(`smuggled-${o.m}`) && !f.content.includes(`visible text ${o.m}`));
  assert.equal(smuggledAlone.length, 0, 'a separate (smuggled) message was stored');
}

describe('SMTP smuggling, bare_newline: normalize (default)', { timeout: 240_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice') });
  });
  after(async () => {
    await gw?.cleanup();
  });

  for (const seq of eodSequences()) {
    it(`${seq.id} (${seq.c_escaped}) + smuggled MAIL/RCPT/DATA: at most one message, smuggled commands get no replies`, async (t) => {
      const o = await smuggle(gw, seq);
      const { accepted } = assertNotSmuggled(gw, seq, o);
      t.diagnostic(accepted ? 'accepted as one message' : `refused: ${o.after354[0]?.raw}`);
      await assertStoredOnce(gw, o, accepted);
    });
  }

  it('the real end of data alone (control): one message stored, one reply', async () => {
    const o = await smuggle(gw, { id: 'control', bytes_hex: '0d 0a', c_escaped: '\\r\\n', sources: [] });
    const { accepted } = assertNotSmuggled(gw, { id: 'control', bytes_hex: '', c_escaped: '', sources: [] }, o);
    assert.ok(accepted, `a clean message must be accepted\n${o.c.describe()}`);
    await assertStoredOnce(gw, o, true);
  });
});

describe('SMTP smuggling, bare_newline: reject', { timeout: 240_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ users: userMap('alice'), config: { smtp: { bare_newline: 'reject' } } });
  });
  after(async () => {
    await gw?.cleanup();
  });

  const hasBareNewline = (seq: EodSequence) => {
    const b = hexBytes(seq.bytes_hex);
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 0x0a && b[i - 1] !== 0x0d) return true;
      if (b[i] === 0x0d && b[i + 1] !== 0x0a) return true;
    }
    return false;
  };

  for (const seq of eodSequences()) {
    const bare = hasBareNewline(seq);
    it(`${seq.id} (${seq.c_escaped}) → ${bare ? 'message refused with 5xx (bare CR/LF)' : 'at most one message'}, smuggled commands get no replies`, async (t) => {
      const o = await smuggle(gw, seq);
      const { accepted } = assertNotSmuggled(gw, seq, o);
      t.diagnostic(accepted ? 'accepted as one message' : `refused: ${o.after354[0]?.raw}`);
      if (bare) assert.equal(accepted, false, `bare_newline: reject must refuse a message with a bare CR or LF\n${o.c.describe()}`);
      await assertStoredOnce(gw, o, accepted);
    });
  }
});
