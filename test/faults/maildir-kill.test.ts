// SIGKILL during a Maildir delivery, for real: a large message is accepted ("250"), and the
// moment its file appears in the mailbox's tmp/ (inotify) the gateway is stopped (SIGSTOP, so
// the file is caught half-written) and killed (SIGKILL). Restarted on the same data directory,
// the gateway must deliver the acknowledged message exactly once (the kill came before the
// rename into new/, so no "delivered" record can exist), and sweep the stale tmp/ files: the
// half-written one (aged past maildir.tmp_max_age by the test) and others like it, while a
// fresh file in tmp/ (a delivery in progress, by us or another program) is left alone. The sweep
// runs at start and then every maildir.tmp_sweep_interval.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';
import { sleep, waitFor } from '../helpers/wait.js';

const ALICE = USERS.alice.address;
const HOUR = 3_600_000;

function ageFile(file: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

/** Waits for the first file in `dir`, then freezes the gateway at once (SIGSTOP) and reports what it saw. */
function freezeOnFirstFile(dir: string, pid: number): Promise<{ name: string; size: number }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const watcher = fs.watch(dir, () => {
      if (done) return;
      done = true;
      try {
        process.kill(pid, 'SIGSTOP');
      } catch (err) {
        watcher.close();
        reject(err as Error);
        return;
      }
      watcher.close();
      const names = fs.readdirSync(dir);
      const name = names[0];
      if (!name) return reject(new Error(`inotify fired but ${dir} is empty`));
      resolve({ name, size: fs.statSync(path.join(dir, name)).size });
    });
  });
}

describe('SIGKILL during Maildir delivery, then the tmp/ sweep', { timeout: 180_000 }, () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        smtp: { max_message_size: '64MiB' },
        queue: { retry_initial: '1s', retry_max: '2s' },
        maildir: { tmp_max_age: '36h', tmp_sweep_interval: '1s' },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('the acknowledged message is delivered exactly once after the restart; stale tmp/ files are swept, fresh ones kept', async () => {
    const box = gw.mailboxDir(ALICE);
    for (const sub of ['tmp', 'new', 'cur', '.Junk/tmp', '.Junk/new', '.Junk/cur']) fs.mkdirSync(path.join(box, sub), { recursive: true, mode: 0o700 });
    const tmp = path.join(box, 'tmp');
    const token = marker('killed');
    // About 24 MB: the delivery writes it in 64 KiB pieces, long enough to be caught in tmp/.
    const line = `${token} ${crypto.randomBytes(30).toString('hex')}\r\n`;
    const body = `${line.repeat(Math.ceil(24_000_000 / line.length))}END-OF-${token}\r\n`;
    const msg = makeMessage({ from: EXT_SENDER, to: ALICE, subject: token, body });

    const frozen = freezeOnFirstFile(tmp, gw.pid!);
    const c = await SmtpClient.connect(gw.ports.mx);
    await c.ehlo('client.example.net');
    const r = await transaction(c, EXT_SENDER, [ALICE], msg);
    assertReply(r.final!, 250, '2.0.0', c.describe());
    const caught = await Promise.race([frozen, sleep(30_000).then(() => undefined)]);
    assert.ok(caught, 'the delivery never wrote into tmp/');
    c.close();
    await gw.kill();
    assert.ok(caught.size < msg.length, `caught half-written: ${caught.size} of ~${msg.length} bytes`);
    assert.equal(gw.readMailbox(ALICE).length, 0, 'killed before the rename into new/');

    // What the kill left, aged past maildir.tmp_max_age; beside it a stale file in .Junk/tmp and
    // a fresh one (a delivery in progress) that must survive.
    const half = path.join(tmp, caught.name);
    ageFile(half, 40 * HOUR);
    const staleJunk = path.join(box, '.Junk', 'tmp', '1.M1P1Q1.other,S=10');
    fs.writeFileSync(staleJunk, 'stale junk');
    ageFile(staleJunk, 37 * HOUR);
    const fresh = path.join(tmp, '2.M2P2Q2.other,S=5');
    fs.writeFileSync(fresh, 'fresh');
    ageFile(fresh, 35 * HOUR);

    const logsBefore = gw.logs.length;
    await gw.start();
    const delivered = await gw.waitForMail(ALICE, token, 60_000);
    assert.ok(delivered.includes(`END-OF-${token}`), 'the copy is whole');
    await sleep(1_000);
    const copies = gw.readMailbox(ALICE).filter((m) => m.content.includes(token));
    assert.equal(copies.length, 1, 'exactly one copy after the restart');
    assert.equal(fs.existsSync(half), false, 'the half-written file was swept');
    assert.equal(fs.existsSync(staleJunk), false, 'the stale file in .Junk/tmp was swept');
    assert.equal(fs.existsSync(fresh), true, 'a file younger than tmp_max_age is kept');
    const swept = gw.logs.slice(logsBefore).find((l) => l.event === 'maildir_tmp_swept');
    assert.ok(swept, 'the sweep at start is logged');
    assert.equal(swept.removed, 2);
    const recovered = gw.logs.slice(logsBefore).find((l) => l.event === 'queue_recovered');
    assert.ok(recovered, 'the restart resumed the queued message');
    await waitFor('the queue to drain', async () => (await gw.queueList()).length === 0, { timeoutMs: 15_000, intervalMs: 300 });

    // The periodic sweep (every second here) takes a file that goes stale while running.
    const later = path.join(tmp, '3.M3P3Q3.other,S=4');
    fs.writeFileSync(later, 'late');
    ageFile(later, 48 * HOUR);
    await waitFor('the periodic sweep to remove a stale file', () => !fs.existsSync(later), { timeoutMs: 10_000, intervalMs: 200 });
    assert.equal(fs.existsSync(fresh), true);
  });
});
