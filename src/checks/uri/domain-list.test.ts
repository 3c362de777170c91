import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../log.js';
import { DomainListFile, DomainLists, matchDomainSet, parseDomainList } from './domain-list.js';
import { hostInfo } from './host.js';

const m = (text: string, host: string) => matchDomainSet(parseDomainList(text, 'f'), hostInfo(host)!);

test('entries: exact, registrable domain, .domain and *.domain, IPs, IDN, comments', () => {
  const list = '# spam\nevil.example.com\n.wild.example.net # and below\n*.star.example.org\nlogin.host.example.info\n203.0.113.7\nпример.рф\n';
  assert.equal(m(list, 'evil.example.com'), 'evil.example.com');
  assert.equal(m(list, 'www.wild.example.net'), '.wild.example.net');
  assert.equal(m(list, 'wild.example.net'), '.wild.example.net');
  assert.equal(m(list, 'star.example.org'), '.star.example.org');
  assert.equal(m(list, 'a.b.star.example.org'), '.star.example.org');
  assert.equal(m(list, 'login.host.example.info'), 'login.host.example.info');
  assert.equal(m(list, 'other.host.example.info'), undefined);
  assert.equal(m(list, '203.0.113.7'), '203.0.113.7');
  assert.equal(m(list, 'xn--e1afmkfd.xn--p1ai'), 'xn--e1afmkfd.xn--p1ai');
  assert.equal(m(list, 'example.com'), undefined);
  // A registrable-domain entry covers its hosts (registrable domain of www.evil.co.uk).
  assert.equal(m('evil.co.uk', 'www.evil.co.uk'), 'evil.co.uk');
});

test('bad lines are reported with file and line, the rest is kept', () => {
  const s = parseDomainList('good.example.com\nbad domain here\n-bad-.com\n*.203.0.113.1\nok.example.net\n', 'list.txt');
  assert.equal(s.entries, 2);
  assert.deepEqual(s.bad.map((b) => [b.file, b.line]), [['list.txt', 2], ['list.txt', 3], ['list.txt', 4]]);
});

test('reload on change; a broken or empty file keeps the old data and is logged', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uri-list-'));
  const file = path.join(dir, 'block.txt');
  let log = '';
  const logger = createLogger('info', new Writable({ write(c, _e, cb) { log += c.toString(); cb(); } }));
  fs.writeFileSync(file, 'first.example.com\n');
  const lists = DomainLists.start([file], { logger, settleMs: 20, pollMs: 100 });
  try {
    const has = (h: string) => !!lists.match(hostInfo(h)!);
    assert.ok(has('first.example.com'));
    const waitFor = async (cond: () => boolean, what: string) => {
      const end = Date.now() + 5000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log: ${log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    // Atomic replace: write elsewhere, rename over.
    fs.writeFileSync(`${file}.tmp`, 'second.example.com\n');
    fs.renameSync(`${file}.tmp`, file);
    await waitFor(() => has('second.example.com'), 'the new file');
    assert.ok(!has('first.example.com'));
    // All lines bad: refused, old data kept, file:line logged.
    fs.writeFileSync(`${file}.tmp`, 'not a domain\n');
    fs.renameSync(`${file}.tmp`, file);
    await waitFor(() => log.includes('uri_list_load_failed'), 'the refusal');
    assert.ok(has('second.example.com'));
    assert.match(log, /block\.txt:1: one domain per line expected/);
    // Empty file: refused too.
    fs.writeFileSync(`${file}.tmp`, '');
    fs.renameSync(`${file}.tmp`, file);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(has('second.example.com'));
    // Only comments: an intentional empty list.
    fs.writeFileSync(`${file}.tmp`, '# emptied on purpose\n');
    fs.renameSync(`${file}.tmp`, file);
    await waitFor(() => !has('second.example.com'), 'the emptied list');
  } finally {
    lists.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing file is a start-up error naming it', () => {
  assert.throws(() => new DomainListFile('/nonexistent/uri-block.txt', { watch: false }).start(), /\/nonexistent\/uri-block\.txt/);
});
