// Local DNS list mirrors in the running gateway: an rbldnsd-format zone file answers the DNSBL
// check from memory (no DNS server at all), is re-read when it changes, keeps its data when the
// new file is broken, and is served over DNS to other hosts (dns.serve).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { createResolver } from '../../src/dns/resolver.js';

async function rcptFrom(gw: Gateway, client: string): Promise<{ code: number; text: string }> {
  const c = await SmtpClient.connect(gw.ports.mx, { localAddress: client });
  await c.ehlo();
  assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
  const r = await c.cmd(`RCPT TO:<${USERS.alice.address}>`);
  await c.quit();
  return { code: r.code, text: r.text };
}

describe('local zone mirrors (rbldnsd format) in the running gateway', { timeout: 120_000 }, () => {
  let gw: Gateway;
  let zoneFile = '';
  let servePort = 0;
  before(async () => {
    [servePort] = await freePorts(1);
    gw = await startGateway({
      users: userMap('alice'),
      config: ({ tmpDir }) => {
        zoneFile = path.join(tmpDir, 'local-bl.zone');
        fs.writeFileSync(zoneFile, [
          '$TTL 300',
          ':127.0.0.2:Listed in the local mirror: $',
          '127.0.0.2',
          '127.0.5.0/24',
          '!127.0.5.7',
          'this line is not an address',
          '',
        ].join('\n'));
        return {
          dns: { zones: [{ name: 'local-bl.mirror', type: 'ip4set', file: zoneFile }], serve: { address: '127.0.0.1', port: servePort! } },
          dnsbl: { lists: [{ zone: 'local-bl.mirror', weight: 1 }] },
        };
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
  });

  it('listed clients are refused from the mirror with its TXT; exclusions and unlisted clients pass; the bad line is reported with file:line', async () => {
    const listed = await rcptFrom(gw, '127.0.0.2');
    assert.equal(listed.code, 554);
    assert.match(listed.text, /blocked using local-bl\.mirror; Listed in the local mirror: 127\.0\.0\.2$/);
    assert.equal((await rcptFrom(gw, '127.0.5.9')).code, 554, 'inside the listed /24');
    assert.equal((await rcptFrom(gw, '127.0.5.7')).code, 250, 'excluded with !');
    assert.equal((await rcptFrom(gw, '127.0.0.3')).code, 250, 'not listed');
    const bad = gw.logs.find((l) => JSON.stringify(l).includes('this line is not an address'));
    assert.ok(bad, 'the malformed line is logged');
    assert.match(JSON.stringify(bad), /local-bl\.zone.*6|"line":6/);
  });

  it('`portcullis check-ip` answers from the mirror too', async () => {
    const r = await gw.cli(['check-ip', '127.0.0.2']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /DNSBL_LOCAL_BL_MIRROR/);
  });

  it('a changed file is re-read; a broken one keeps the data loaded before', async () => {
    fs.writeFileSync(`${zoneFile}.new`, ':127.0.0.2:Now listed: $\n127.0.0.2\n127.0.0.3\n');
    fs.renameSync(`${zoneFile}.new`, zoneFile);
    await waitFor('127.0.0.3 refused after the reload', async () => ((await rcptFrom(gw, '127.0.0.3')).code === 554 || undefined), { timeoutMs: 40_000 });
    assert.equal((await rcptFrom(gw, '127.0.5.9')).code, 250, 'the old /24 is gone with the old file');
    const loadsBefore = gw.logs.length;
    fs.writeFileSync(`${zoneFile}.new`, '\u0000\u0001 garbage ::: not a zone\n');
    fs.renameSync(`${zoneFile}.new`, zoneFile);
    const failed = await waitFor('the broken reload is logged', () => gw.logs.slice(loadsBefore).find((l) => l.event === 'zone_load_failed'), { timeoutMs: 40_000 });
    assert.equal(failed.serving, 2, `the old entries stay in service: ${JSON.stringify(failed)}`);
    const still = await rcptFrom(gw, '127.0.0.3');
    assert.equal(still.code, 554, 'a broken file never empties a loaded zone');
    assert.match(still.text, /Now listed: 127\.0\.0\.3/);
  });

  it('dns.serve answers other hosts from the mirror over DNS', async () => {
    const r = createResolver({ servers: [`127.0.0.1:${servePort}`], timeoutMs: 1000, attempts: 1, maxInflight: 10, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });
    const a = await r.lookup('2.0.0.127.local-bl.mirror', 'A');
    assert.equal(a.status, 'ok');
    assert.deepEqual(a.status === 'ok' && a.records, ['127.0.0.2']);
    assert.equal(a.source, 'dns');
    const txt = await r.lookup('2.0.0.127.local-bl.mirror', 'TXT');
    assert.deepEqual(txt.status === 'ok' && txt.records.map((t) => t.join('')), ['Now listed: 127.0.0.2']);
    assert.equal((await r.lookup('9.9.0.127.local-bl.mirror', 'A')).status, 'nxdomain');
    assert.equal((await r.lookup('example.org', 'A')).status, 'error', 'names outside the zones are REFUSED');
  });
});
