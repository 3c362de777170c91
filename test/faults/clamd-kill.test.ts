// clamd killed in the middle of a scan, for real: the real clamd (Debian clamav-daemon) scans a
// large message; the moment the gateway's connection to it shows up among clamd's file
// descriptors, clamd gets SIGKILL. The message must get the configured failure behaviour —
// AV_UNAVAILABLE's default action, tempfail: 451 4.7.1 — never be accepted unscanned, never
// crash the gateway; while clamd stays down every message is refused the same way; once a new
// clamd answers on the same socket path, clean mail flows and a virus is refused again (so
// scanning really resumed). test/malware/malware-smtp.test.ts covers a clamd that was never there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EICAR, needClamd, startClamd, type Clamd } from '../helpers/clamd.js';
import { EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { SmtpClient, dataBlock, transaction, type Reply } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ALICE = USERS.alice.address;

/** How many sockets a process holds open (its listening socket, plus one per client connection). */
function socketCount(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

async function send(gw: Gateway, msg: string): Promise<{ final?: Reply; transcript: string }> {
  const c = await SmtpClient.connect(gw.ports.mx);
  await c.ehlo('client.example.net');
  const r = await transaction(c, EXT_SENDER, [ALICE], msg);
  await c.quit().catch(() => undefined);
  return { final: r.final, transcript: c.describe() };
}

describe('clamd killed mid-scan', { timeout: 180_000 }, () => {
  let clamd: Clamd | undefined;
  let gw: Gateway | undefined;
  let linkDir = '';
  let link = '';

  before(async (t) => {
    if (!needClamd(t as never)) return;
    clamd = await startClamd();
    // The gateway reaches clamd through a symlink, so the restarted clamd (in a folder of its
    // own) answers on the same configured path.
    linkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-clamd-link-'));
    link = path.join(linkDir, 'clamd.sock');
    fs.symlinkSync(clamd.socket, link);
    gw = await startGateway({
      users: userMap('alice'),
      config: { smtp: { max_message_size: '40MiB' }, antivirus: { enabled: true, clamd: link, timeout: '20s' } },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await clamd?.stop();
    if (linkDir) fs.rmSync(linkDir, { recursive: true, force: true });
  });

  it('451 4.7.1 for the message being scanned, nothing delivered, the gateway goes on; mail flows again once clamd is back', async (t) => {
    if (!gw || !clamd) return t.skip('no clamd');
    const token = marker('midscan');
    const line = `${token} the quick brown fox jumps over the lazy dog 0123456789\r\n`;
    const big = makeMessage({ from: EXT_SENDER, to: ALICE, subject: token, body: line.repeat(Math.ceil(20_000_000 / line.length)) });
    const idle = socketCount(clamd.pid);

    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo('client.example.net');
    assert.equal((await c.cmd(`MAIL FROM:<${EXT_SENDER}>`)).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${ALICE}>`)).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(dataBlock(big));
    const reply = c.readReply(60_000);
    // The scan starts after the end of data: kill clamd once the gateway is connected to it.
    const pid = clamd.pid;
    await waitFor('the gateway to connect to clamd', () => socketCount(pid) > idle, { timeoutMs: 30_000, intervalMs: 2 });
    process.kill(pid, 'SIGKILL');
    const final = await reply;
    assert.equal(final.code, 451, `expected 451 4.7.1, got ${final.raw}\n${c.describe()}`);
    assert.equal(final.enhanced, '4.7.1');
    assert.match(final.text, /virus scanner unavailable/);
    await c.quit().catch(() => undefined);
    const logged = await waitFor('the loud av_unavailable line', () => gw!.logs.find((l) => l.event === 'av_unavailable' && l.level === 'error'));
    assert.match(String(logged.reason), /clamd|connection|closed|ECONNRESET|EPIPE/i);
    assert.ok(gw.running, 'the gateway survived');

    // clamd still down: refused the same way, at once (no socket to connect to).
    const down = await send(gw, makeMessage({ from: EXT_SENDER, to: ALICE, subject: marker('down') }));
    assert.equal(down.final?.code, 451, down.transcript);
    assert.equal(down.final?.enhanced, '4.7.1');
    await sleep(500);
    assert.equal(gw.readMailbox(ALICE).filter((m) => m.content.includes(token)).length, 0, 'never accepted unscanned');
    assert.equal((await gw.queueList()).length, 0, 'nothing queued');

    // clamd back (a new process, the same path through the link): clean mail flows, a virus is refused.
    const old = clamd;
    clamd = await startClamd();
    fs.rmSync(link);
    fs.symlinkSync(clamd.socket, link);
    await old.stop();
    const back = marker('back');
    const ok = await send(gw, makeMessage({ from: EXT_SENDER, to: ALICE, subject: back }));
    assert.equal(ok.final?.code, 250, ok.transcript);
    await gw.waitForMail(ALICE, back);
    const virus = await send(gw, makeMessage({ from: EXT_SENDER, to: ALICE, subject: marker('eicar'), body: `${EICAR.toString('latin1')}\r\n` }));
    assert.equal(virus.final?.code, 554, virus.transcript);
    assert.match(virus.final!.text, /virus/);
  });
});
