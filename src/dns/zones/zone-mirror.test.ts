import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { relativeName, ZoneMirror, ZoneSet, type ZoneMirrorOptions } from './zone-mirror.js';
import type { MalformedLine } from './zone.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-zone-mirror-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileNo = 0;
function zoneFile(text: string | Buffer): string {
  const f = path.join(tmp, `z${++fileNo}.zone`);
  fs.writeFileSync(f, text);
  return f;
}

/** Replaces a zone file the way rsync does: a new file renamed over the old one. */
function replace(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

function mirror(file: string, more: Partial<ZoneMirrorOptions> = {}): ZoneMirror {
  return new ZoneMirror({ name: 'BL.Example.Test.', type: 'ip4set', file, ttl: 35 * 60_000, watch: false, ...more });
}

async function until(what: string, cond: () => boolean, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

test('names under the origin are answered from memory; other names are not ours', async () => {
  const m = mirror(zoneFile(':127.0.0.3:Listed $ — see https://bl.example/ü\n10.0.0.0/8\n!10.1.0.0/16\n192.0.2.1 :4:\n'));
  assert.equal(await m.load(), true);
  assert.equal(m.origin, 'bl.example.test');
  assert.deepEqual(m.answer('1.0.0.10.bl.example.test', 'A'), { status: 'ok', records: ['127.0.0.3'], ttl: 2100, source: 'zone' });
  assert.deepEqual(m.answer('1.0.0.10.BL.example.test.', 'TXT'), { status: 'ok', records: [['Listed 10.0.0.1 — see https://bl.example/ü']], ttl: 2100, source: 'zone' });
  assert.deepEqual(m.answer('1.2.1.10.bl.example.test', 'A'), { status: 'nxdomain', source: 'zone' }); // excluded
  assert.deepEqual(m.answer('1.2.0.192.bl.example.test', 'TXT'), { status: 'nodata', source: 'zone' }); // listed, no TXT
  assert.deepEqual(m.answer('1.2.0.192.bl.example.test', 'A'), { status: 'ok', records: ['127.0.0.4'], ttl: 2100, source: 'zone' });
  assert.deepEqual(m.answer('bl.example.test', 'A'), { status: 'nodata', source: 'zone' });
  assert.deepEqual(m.answer('www.bl.example.test', 'A'), { status: 'nxdomain', source: 'zone' });
  assert.equal(m.answer('example.test', 'A'), undefined);
  assert.equal(m.answer('xbl.example.test', 'A'), undefined);
  assert.equal(m.answer('1.0.0.10.other.test', 'A'), undefined);
  const s = m.stats();
  assert.equal(s.loaded, true);
  assert.equal(s.entries, 3); // two listings and an exclusion
  assert.equal(s.loads, 1);
  assert.ok(s.loadMs > 0);
  m.close();
});

test('relativeName: the part below the origin, "" for the origin, undefined elsewhere', () => {
  assert.equal(relativeName('4.3.2.1.BL.test.', 'bl.test'), '4.3.2.1');
  assert.equal(relativeName('bl.test', 'bl.test'), '');
  assert.equal(relativeName('abl.test', 'bl.test'), undefined);
  assert.equal(relativeName('test', 'bl.test'), undefined);
});

test('before a first load, and when the file is missing, names under the origin get an error', async () => {
  const file = path.join(tmp, 'not-yet.zone');
  const m = mirror(file);
  assert.equal(await m.load(), false);
  const a = m.answer('1.0.0.10.bl.example.test', 'A');
  assert.equal(a?.status, 'error');
  assert.match(a?.status === 'error' ? a.reason : '', /not loaded: cannot read .*not-yet\.zone/);
  assert.equal(m.stats().loaded, false);
  fs.writeFileSync(file, '10.0.0.1\n');
  assert.equal(await m.reload(), true);
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'ok');
  assert.equal(m.stats().lastError, undefined);
  m.close();
});

test('a broken file never empties a loaded zone: the old data stays and the error is reported', async () => {
  const file = zoneFile('10.0.0.1\n10.0.0.2\n');
  const malformed: MalformedLine[] = [];
  const { logger, lines } = logSink();
  const m = mirror(file, { onMalformed: (l) => malformed.push(l), logger });
  assert.equal(await m.load(), true);

  // Every line garbage: zero entries.
  replace(file, 'this is\nnot a zone file\n<html>oops</html>\n');
  assert.equal(await m.reload(), false);
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'ok');
  assert.deepEqual(malformed.map((l) => `${path.basename(l.file)}:${l.line}`), [1, 2, 3].map((n) => `${path.basename(file)}:${n}`));
  let s = m.stats();
  assert.equal(s.entries, 2);
  assert.equal(s.failures, 1);
  assert.match(s.lastError ?? '', /no valid entry \(3 malformed lines\): still serving the 2 entries/);
  assert.ok(lines.some((l) => l.event === 'zone_load_failed'));
  assert.equal(lines.filter((l) => l.event === 'zone_malformed_line').length, 3);

  // An empty file: zero entries too.
  replace(file, '');
  assert.equal(await m.reload(), false);
  // The file gone: unreadable.
  fs.unlinkSync(file);
  assert.equal(await m.reload(), false);
  assert.match(m.stats().lastError ?? '', /cannot read/);
  // A $TIMESTAMP in the future refuses the file.
  fs.writeFileSync(file, '$TIMESTAMP 2037:12:31\n10.0.0.9\n');
  assert.equal(await m.reload(), false);
  assert.match(m.stats().lastError ?? '', /in the future/);
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'ok');
  assert.equal(m.answer('9.0.0.10.bl.example.test', 'A')?.status, 'nxdomain');

  // A good file again is taken.
  replace(file, '10.0.0.9\n');
  assert.equal(await m.reload(), true);
  s = m.stats();
  assert.equal(s.entries, 1);
  assert.equal(s.lastError, undefined);
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'nxdomain');
  assert.equal(m.answer('9.0.0.10.bl.example.test', 'A')?.status, 'ok');
  m.close();
});

test('malformed lines: all reported to the callback and counted, the log shows the first ten', async () => {
  const bad = Array.from({ length: 25 }, (_, i) => `bad${i}`);
  const { logger, lines } = logSink();
  const seen: MalformedLine[] = [];
  const m = mirror(zoneFile(['10.0.0.1', ...bad].join('\n')), { logger, onMalformed: (l) => seen.push(l) });
  await m.load();
  assert.equal(seen.length, 25);
  assert.equal(seen[24].line, 26);
  assert.equal(seen[24].text, 'bad24');
  assert.equal(m.stats().malformed, 25);
  assert.equal(lines.filter((l) => l.event === 'zone_malformed_line').length, 10);
  const summary = lines.find((l) => l.event === 'zone_malformed_lines');
  assert.equal(summary?.malformed, 25);
  const loaded = lines.find((l) => l.event === 'zone_loaded');
  assert.equal(loaded?.entries, 1);
  m.close();
});

test('the file is watched: a renamed-in file is loaded without being asked', async () => {
  const file = zoneFile('10.0.0.1\n');
  const m = mirror(file, { watch: true, settleMs: 20, pollMs: 60_000 });
  await m.load();
  replace(file, '10.0.0.2\n');
  await until('the watcher to reload', () => m.answer('2.0.0.10.bl.example.test', 'A')?.status === 'ok');
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'nxdomain');
  assert.equal(m.stats().loads, 2);
  m.close();
  // Closed: changes are no longer seen.
  replace(file, '10.0.0.3\n');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(m.answer('3.0.0.10.bl.example.test', 'A')?.status, 'nxdomain');
});

test('the periodic check loads a file whose directory could not be watched', async () => {
  const dir = path.join(tmp, 'later');
  const file = path.join(dir, 'bl.zone');
  const m = mirror(file, { watch: true, settleMs: 20, pollMs: 40 });
  assert.equal(await m.load(), false);
  fs.mkdirSync(dir);
  fs.writeFileSync(file, '10.0.0.1\n');
  await until('the periodic check to load', () => m.answer('1.0.0.10.bl.example.test', 'A')?.status === 'ok');
  m.close();
});

test('gzip-compressed zone files are read, as rbldnsd reads them', async () => {
  const m = mirror(zoneFile(zlib.gzipSync(':5:gz $\n10.0.0.0/8\n')));
  assert.equal(await m.load(), true);
  assert.deepEqual(m.answer('7.0.0.10.bl.example.test', 'TXT'), { status: 'ok', records: [['gz 10.0.0.7']], ttl: 2100, source: 'zone' });
  m.close();
});

test('data past its $TIMESTAMP expiry is not served', async () => {
  let now = Date.UTC(2020, 0, 1, 12);
  const m = mirror(zoneFile('$TIMESTAMP 2020:01:01 +1d\n$TTL 60\n10.0.0.1\n'), { now: () => now });
  await m.load();
  assert.deepEqual(m.answer('1.0.0.10.bl.example.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 60, source: 'zone' });
  now = Date.UTC(2020, 0, 3);
  assert.equal(m.answer('1.0.0.10.bl.example.test', 'A')?.status, 'error');
  assert.equal(m.stats().expired, true);
  m.close();
});

test('ZoneSet: the longest origin answers, one origin per mirror, everything closes', async () => {
  const set = ZoneSet.fromConfig([
    { name: 'bl.test', type: 'ip4set', file: zoneFile(':2:parent\n1.2.3.4\n'), ttl: 60_000 },
    { name: 'sub.bl.test', type: 'dnset', file: zoneFile(':3:child $\nexample.com\n'), ttl: 120_000 },
    { name: 'dn.test', type: 'dnset', file: zoneFile('.example.org\n'), ttl: 60_000 },
  ], { watch: false });
  await set.load();
  assert.deepEqual(set.answer('4.3.2.1.bl.test', 'TXT'), { status: 'ok', records: [['parent']], ttl: 60, source: 'zone' });
  assert.deepEqual(set.answer('example.com.sub.bl.test', 'TXT'), { status: 'ok', records: [['child example.com']], ttl: 120, source: 'zone' });
  assert.equal(set.answer('sub.bl.test', 'A')?.status, 'nodata');
  assert.equal(set.answer('x.example.org.dn.test', 'A')?.status, 'ok');
  assert.equal(set.answer('example.org', 'A'), undefined);
  assert.equal(set.find('EXAMPLE.COM.SUB.BL.TEST.')?.origin, 'sub.bl.test');
  assert.deepEqual(set.stats().map((s) => [s.name, s.entries]), [['bl.test', 1], ['sub.bl.test', 1], ['dn.test', 1]]);
  set.close();
  assert.throws(
    () => ZoneSet.fromConfig([
      { name: 'bl.test', type: 'ip4set', file: 'a', ttl: 1 },
      { name: 'BL.test.', type: 'ip4set', file: 'b', ttl: 1 },
    ]),
    /configured twice/,
  );
});
