// Archive inspection: executables inside, bombs (ratio, size, entries, lying headers, overlap,
// depth), traversal names, corrupt input, encrypted zips and passwords, and the bsdtar formats.
// Every hostile case also checks that the walk stayed within its time bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { inspectArchive, tryPasswords, type ArchiveReport, type InspectOptions } from './archive.js';
import { executableKind, isTraversalName, sniffArchive } from './archive-types.js';
import { TarParser } from './archive-tar.js';
import {
  FAKE_ELF, FAKE_EXE, bsdtarArchive, encryptedZip, infoZip, sevenZip, tarOf, zipOf,
} from '../../test/helpers/archive-fixtures.js';
import { needBsdtar, needTool, wantTool } from '../../test/helpers/clamd.js';

const symbols = (r: ArchiveReport) => [...new Set(r.findings.map((f) => f.symbol))].sort();
const TEXT = Buffer.from('Quarterly figures attached.\n');

async function inspect(buf: Buffer, name: string, opts: InspectOptions = {}): Promise<ArchiveReport> {
  const r = await inspectArchive(buf, name, opts);
  // Whatever the input: bounded time (the limit is 10 s; none of these needs more than a fraction).
  assert.ok(r.elapsedMs < 5000, `${name}: ${r.elapsedMs} ms`);
  return r;
}

test('magic bytes: formats and executables', () => {
  assert.equal(sniffArchive(zipOf([{ name: 'a', data: TEXT }])), 'zip');
  assert.equal(sniffArchive(zlib.gzipSync(TEXT)), 'gzip');
  assert.equal(sniffArchive(tarOf([{ name: 'a', data: TEXT }])), 'tar');
  assert.equal(sniffArchive(Buffer.from('7z\xbc\xaf\x27\x1c\x00\x04', 'latin1')), '7z');
  assert.equal(sniffArchive(Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1')), 'rar');
  assert.equal(sniffArchive(Buffer.from('#mtree\n./etc/passwd type=file\n')), undefined, 'text is never an archive (no mtree)');
  assert.equal(sniffArchive(TEXT), undefined);
  assert.equal(executableKind('report.pdf', FAKE_EXE), 'Windows executable (MZ)');
  assert.equal(executableKind('x', FAKE_ELF), 'ELF executable');
  assert.equal(executableKind('x', Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1])), 'Mach-O executable');
  assert.equal(executableKind('run', Buffer.from('#!/bin/sh\nrm -rf ~\n')), 'script with #! interpreter line');
  assert.equal(executableKind('INVOICE.PDF.EXE'), '.exe file');
  assert.equal(executableKind('invoice.js'), '.js file');
  assert.equal(executableKind('notes.txt', TEXT), undefined);
  assert.equal(executableKind('archive.exe.txt', TEXT), undefined);
});

test('traversal names', () => {
  for (const bad of ['../evil', 'a/../../b', '..\\..\\windows\\system32\\x.dll', '/etc/passwd', '\\\\server\\share\\x', 'C:\\x.exe', 'c:x']) {
    assert.ok(isTraversalName(bad), bad);
  }
  for (const ok of ['a/b/c.txt', 'a..b', '..hidden', 'dir/..x/y', 'report.v1..2.pdf']) assert.ok(!isTraversalName(ok), ok);
});

test('a plain zip: entries listed, nothing found', async () => {
  const r = await inspect(zipOf([{ name: 'docs/report.txt', data: TEXT }, { name: 'docs/', data: Buffer.alloc(0), method: 'store' }]), 'docs.zip');
  assert.equal(r.format, 'zip');
  assert.deepEqual(r.findings, []);
  assert.deepEqual(r.entries.map((e) => e.path), ['docs.zip/docs/report.txt', 'docs.zip/docs/']);
  assert.ok(r.complete);
});

test('executables inside a zip, by name and by magic bytes', async () => {
  const r = await inspect(zipOf([
    { name: 'invoice.pdf.exe', data: FAKE_EXE },
    { name: 'readme.txt', data: TEXT },
    { name: 'photo.jpg', data: FAKE_EXE }, // PE with an innocent name
    { name: 'tool', data: FAKE_ELF },
    { name: 'install', data: Buffer.from('#!/bin/sh\necho hi\n') },
  ]), 'invoice.zip');
  assert.deepEqual(symbols(r), ['ARCHIVE_EXE']);
  assert.deepEqual(r.findings.map((f) => f.path), ['invoice.zip/invoice.pdf.exe', 'invoice.zip/photo.jpg', 'invoice.zip/tool', 'invoice.zip/install']);
  assert.equal(r.entries.find((e) => e.name === 'photo.jpg')?.executable, 'Windows executable (MZ)');
});

test('zip bomb by ratio: 10 MB of zeros in a few KB, refused from the index without inflating', async () => {
  const zeros = Buffer.alloc(10 * 1024 * 1024);
  const bomb = zipOf([{ name: 'zeros.bin', data: zeros }]);
  assert.ok(bomb.length < 20_000);
  let read = 0;
  const r = await inspect(bomb, 'bomb.zip', { onEntry: () => void read++ });
  assert.deepEqual(symbols(r), ['ARCHIVE_BOMB']);
  assert.match(r.findings[0]!.reason, /expands \d+:1/);
  assert.equal(read, 0, 'nothing inflated');
  assert.equal(r.complete, false);
  // The same data under a ratio limit it satisfies: no bomb.
  const ok = await inspect(bomb, 'bomb.zip', { limits: { maxRatio: 5000 } });
  assert.deepEqual(symbols(ok), []);
});

test('zip bomb by a lying header: declared 100 bytes, inflates to 5 MB; stopped at the declared size', async () => {
  const liar = zipOf([{ name: 'small.txt', data: Buffer.alloc(5 * 1024 * 1024, 0x61), declaredSize: 100 }]);
  const r = await inspect(liar, 'liar.zip', { limits: { maxRatio: 1e6 } });
  assert.deepEqual(symbols(r), ['ARCHIVE_BOMB']);
  assert.match(r.findings[0]!.reason, /declared size|inflates/);
});

test('overlapping entries (one compressed stream listed twice): a bomb', async () => {
  const r = await inspect(zipOf([{ name: 'a.txt', data: Buffer.alloc(200_000, 0x61) }], { overlap: true }), 'overlap.zip', { limits: { maxRatio: 1e6 } });
  assert.ok(symbols(r).includes('ARCHIVE_BOMB'), JSON.stringify(r.findings));
});

test('total size: entries that add up past max_total_size', async () => {
  const files = Array.from({ length: 8 }, (_, i) => ({ name: `part${i}.bin`, data: Buffer.alloc(300_000, i), method: 'store' as const }));
  const r = await inspect(zipOf(files), 'parts.zip', { limits: { maxTotalSize: 1_000_000 } });
  assert.deepEqual(symbols(r), ['ARCHIVE_BOMB']);
  assert.match(r.findings[0]!.reason, /more than 1000000/);
});

test('10,000 entries: a bomb, found fast and without reading them all', async () => {
  const many = zipOf(Array.from({ length: 10_000 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x'), method: 'store' as const })));
  const t0 = Date.now();
  const r = await inspect(many, 'many.zip');
  assert.deepEqual(symbols(r), ['ARCHIVE_BOMB']);
  assert.match(r.findings[0]!.reason, /more than 1000 entries/);
  assert.ok(r.entries.length <= 1001);
  assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
});

test('nesting: zip in zip in zip…; opened to max_depth, then ARCHIVE_TOO_DEEP', async () => {
  let inner = zipOf([{ name: 'payload.exe', data: FAKE_EXE }]);
  for (let level = 5; level >= 1; level--) inner = zipOf([{ name: `level${level}.zip`, data: inner, method: 'store' }]);
  // Layers: outer(level1.zip entry) … 6 archives in all.
  const deep = await inspect(inner, 'outer.zip', { limits: { maxDepth: 3 } });
  assert.deepEqual(symbols(deep), ['ARCHIVE_TOO_DEEP']);
  assert.equal(deep.findings[0]!.path, 'outer.zip/level1.zip/level2.zip/level3.zip');
  const all = await inspect(inner, 'outer.zip', { limits: { maxDepth: 6 } });
  assert.deepEqual(symbols(all), ['ARCHIVE_EXE']);
  assert.equal(all.findings[0]!.path, 'outer.zip/level1.zip/level2.zip/level3.zip/level4.zip/level5.zip/payload.exe');
  assert.equal(all.entries.at(-1)!.depth, 6);
});

test('../ and absolute names are flagged, never followed', async () => {
  const r = await inspect(zipOf([
    { name: '../../.bashrc', data: TEXT },
    { name: '/etc/cron.d/x', data: TEXT },
    { name: 'ok/file.txt', data: TEXT },
  ]), 'trav.zip');
  assert.deepEqual(symbols(r), ['ARCHIVE_PATH_TRAVERSAL']);
  assert.deepEqual(r.findings.map((f) => f.path), ['trav.zip/../../.bashrc', 'trav.zip//etc/cron.d/x']);
});

test('corrupt zips: truncated, garbage named .zip, bad CRC; never a throw', async () => {
  const good = zipOf([{ name: 'a.txt', data: Buffer.alloc(5000, 0x62) }, { name: 'b.txt', data: TEXT }]);
  const truncated = await inspect(good.subarray(0, good.length - 30), 'cut.zip');
  assert.deepEqual(symbols(truncated), ['ARCHIVE_CORRUPT']);
  const garbage = await inspect(Buffer.from('this is not a zip at all'), 'invoice.zip');
  assert.deepEqual(symbols(garbage), ['ARCHIVE_CORRUPT']);
  assert.equal(garbage.format, undefined);
  const flipped = Buffer.from(good);
  flipped[40] = flipped[40]! ^ 0xff; // inside a.txt's deflated data
  const bad = await inspect(flipped, 'flip.zip');
  assert.deepEqual(symbols(bad), ['ARCHIVE_CORRUPT']);
  // Random bytes behind a zip signature.
  const noise = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 256))]);
  assert.deepEqual(symbols(await inspect(noise, 'noise.zip')), ['ARCHIVE_CORRUPT']);
  // Not an archive and not named like one: nothing to say.
  assert.deepEqual((await inspect(TEXT, 'notes.txt')).findings, []);
});

test('tar and tar.gz natively; a gzip bomb; a corrupt gzip', async () => {
  const tar = tarOf([{ name: 'setup.exe', data: FAKE_EXE }, { name: 'readme.txt', data: TEXT }]);
  const r = await inspect(zlib.gzipSync(tar), 'bundle.tar.gz');
  assert.equal(r.format, 'gzip');
  assert.deepEqual(symbols(r), ['ARCHIVE_EXE']);
  assert.deepEqual(r.entries.map((e) => e.path), ['bundle.tar.gz/setup.exe', 'bundle.tar.gz/readme.txt']);
  const plainTar = await inspect(tar, 'bundle.tar');
  assert.deepEqual(symbols(plainTar), ['ARCHIVE_EXE']);
  // A single gzipped file.
  const single = await inspect(zlib.gzipSync(FAKE_EXE), 'setup.exe.gz');
  assert.deepEqual(symbols(single), ['ARCHIVE_EXE']);
  assert.equal(single.entries[0]!.name, 'setup.exe');
  // 50 MB of zeros gzipped: stopped at ratio × size, never inflated in full.
  const gzBomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024), { level: 9 });
  const b = await inspect(gzBomb, 'zeros.gz');
  assert.deepEqual(symbols(b), ['ARCHIVE_BOMB']);
  const cut = await inspect(zlib.gzipSync(tar).subarray(0, 60), 'cut.tar.gz');
  assert.deepEqual(symbols(cut), ['ARCHIVE_CORRUPT']);
  const badTar = Buffer.from(tar);
  badTar[10] = 0x7a; // name byte: the header checksum no longer matches
  assert.deepEqual(symbols(await inspect(badTar, 'bad.tar')), ['ARCHIVE_CORRUPT']);
});

test('the tar parser: pax path and size records, long names, chunked input', () => {
  const longName = `${'d'.repeat(120)}/setup.exe`;
  const pax = Buffer.from(`${(`path=${longName}\n`.length + 4).toString()} path=${longName}\n`);
  // Build: pax header 'x', then the file under a short name.
  const paxTar = tarOf([{ name: 'PaxHeader', data: pax }, { name: 'short', data: FAKE_EXE }]);
  paxTar[156] = 'x'.charCodeAt(0);
  // Fix the checksum of the first header after changing its type flag.
  const h = paxTar.subarray(0, 512);
  h.write('        ', 148);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const parser = new TarParser(1024);
  const out = [];
  for (let i = 0; i < paxTar.length; i += 100) out.push(...parser.push(paxTar.subarray(i, i + 100)));
  parser.finish();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.name, longName);
  assert.ok(out[0]!.data.equals(FAKE_EXE));
  // Kept bytes are bounded.
  const big = new TarParser(10).push(tarOf([{ name: 'big', data: Buffer.alloc(5000, 1) }]));
  assert.equal(big[0]!.data.length, 10);
  assert.equal(big[0]!.truncated, true);
  assert.equal(big[0]!.size, 5000);
});

test('encrypted zip with the right password among the candidates: opened, entries read and reported', async (t) => {
  for (const zipCrypto of [false, true]) {
    await t.test(zipCrypto ? 'ZipCrypto' : 'AES-256', async () => {
      const enc = await encryptedZip([{ name: 'invoice.exe', data: FAKE_EXE }, { name: 'note.txt', data: TEXT }], 'Inv-2024!', { zipCrypto });
      const seen: string[] = [];
      const r = await inspect(enc, 'invoice.zip', {
        passwords: ['hello', 'Inv-2024', 'Inv-2024!'],
        onEntry: (e, data) => void seen.push(`${e.name}:${e.decrypted}:${data.length}`),
      });
      assert.deepEqual(symbols(r), ['ARCHIVE_ENCRYPTED_OPENED', 'ARCHIVE_EXE']);
      assert.equal(r.password, 'Inv-2024!');
      assert.deepEqual(seen, [`invoice.exe:true:${FAKE_EXE.length}`, `note.txt:true:${TEXT.length}`]);
      assert.equal(r.entries[0]!.executable, 'Windows executable (MZ)');
      assert.equal(await tryPasswords(enc, ['a', 'b', 'Inv-2024!']), 'Inv-2024!');
      assert.equal(await tryPasswords(enc, ['a', 'b', 'Inv-2024!'], 2), undefined, 'the limit is respected');
    });
  }
});

test('encrypted zip without its password: ARCHIVE_ENCRYPTED; names still show executables', async () => {
  const enc = await encryptedZip([{ name: 'payload.scr', data: FAKE_EXE }], 'secret');
  const none = await inspect(enc, 'locked.zip');
  assert.deepEqual(symbols(none), ['ARCHIVE_ENCRYPTED', 'ARCHIVE_EXE']);
  assert.match(none.findings.find((f) => f.symbol === 'ARCHIVE_ENCRYPTED')!.reason, /no candidate password/);
  const wrong = await inspect(enc, 'locked.zip', { passwords: ['one', 'two', 'three'] });
  assert.match(wrong.findings.find((f) => f.symbol === 'ARCHIVE_ENCRYPTED')!.reason, /none of 3 candidate/);
  assert.equal(wrong.password, undefined);
  assert.equal(await tryPasswords(enc, ['one', 'two']), undefined);
  assert.equal(await tryPasswords(zipOf([{ name: 'a', data: TEXT }]), ['x']), undefined, 'not encrypted');
});

test('password tries are bounded: 200 candidates, max_passwords 20, quick', async () => {
  const enc = await encryptedZip([{ name: 'a.txt', data: TEXT }], 'the-real-one', { zipCrypto: true });
  const candidates = [...Array.from({ length: 199 }, (_, i) => `guess${i}`), 'the-real-one'];
  const t0 = Date.now();
  const r = await inspect(enc, 'a.zip', { passwords: candidates });
  assert.deepEqual(symbols(r), ['ARCHIVE_ENCRYPTED']);
  assert.ok(Date.now() - t0 < 1500, `${Date.now() - t0} ms`);
  const found = await inspect(enc, 'a.zip', { passwords: candidates, limits: { maxPasswords: 200 } });
  assert.deepEqual(symbols(found), ['ARCHIVE_ENCRYPTED_OPENED']);
});

test('Info-ZIP "zip -P" (ZipCrypto, as users make them) opens with its password', async (t) => {
  if (!needTool(t, '/usr/bin/zip', 'zip')) return;
  const enc = infoZip({ 'scan.pdf.exe': FAKE_EXE }, 'pw4321');
  const r = await inspect(enc, 'scan.zip', { passwords: ['pw4321'] });
  assert.deepEqual(symbols(r), ['ARCHIVE_ENCRYPTED_OPENED', 'ARCHIVE_EXE']);
});

test('bsdtar formats: 7z and tar.xz with an .exe inside; a nested zip in a 7z', async (t) => {
  if (!needBsdtar(t)) return;
  const sz = bsdtarArchive({ 'docs/setup.exe': FAKE_EXE, 'docs/readme.txt': TEXT }, ['--format', '7zip']);
  assert.equal(sniffArchive(sz), '7z');
  const r = await inspect(sz, 'docs.7z');
  assert.deepEqual(symbols(r), ['ARCHIVE_EXE']);
  assert.deepEqual(r.entries.filter((e) => !e.directory).map((e) => e.path).sort(), ['docs.7z/docs/readme.txt', 'docs.7z/docs/setup.exe']);
  const txz = bsdtarArchive({ 'run.bat': Buffer.from('@echo off\r\n') }, ['--xz']);
  assert.equal(sniffArchive(txz), 'xz');
  assert.deepEqual(symbols(await inspect(txz, 'run.tar.xz')), ['ARCHIVE_EXE']);
  const nested = bsdtarArchive({ 'inner.zip': zipOf([{ name: 'x.exe', data: FAKE_EXE }]) }, ['--format', '7zip']);
  const n = await inspect(nested, 'outer.7z');
  assert.deepEqual(n.findings.map((f) => f.path), ['outer.7z/inner.zip/x.exe']);
  // The same bsdtar formats off: not opened, said in the notes, not a finding.
  const off = await inspect(sz, 'docs.7z', { bsdtar: false });
  assert.deepEqual(off.findings, []);
  assert.equal(off.complete, false);
  assert.match(off.notes[0]!, /not opened/);
});

test('bsdtar: a 7z bomb is cut at the byte budget; a truncated 7z is corrupt', async (t) => {
  if (!needBsdtar(t)) return;
  const bomb = bsdtarArchive({ 'zeros.bin': Buffer.alloc(30 * 1024 * 1024) }, ['--format', '7zip']);
  const r = await inspect(bomb, 'zeros.7z');
  assert.deepEqual(symbols(r), ['ARCHIVE_BOMB']);
  const good = bsdtarArchive({ 'a.txt': Buffer.alloc(100_000, 0x61), 'b.txt': TEXT }, ['--format', '7zip']);
  const cut = await inspect(good.subarray(0, Math.floor(good.length / 2)), 'cut.7z');
  assert.deepEqual(symbols(cut), ['ARCHIVE_CORRUPT']);
});

test('encrypted 7z (libarchive cannot decrypt it): ARCHIVE_ENCRYPTED, names still listed', async (t) => {
  if (!needBsdtar(t) || !wantTool(t, '/usr/bin/7z', 'p7zip-full')) return;
  const enc = sevenZip({ 'payload.exe': FAKE_EXE }, { password: 'pw' });
  const r = await inspect(enc, 'locked.7z', { passwords: ['pw'] });
  assert.deepEqual(symbols(r), ['ARCHIVE_ENCRYPTED', 'ARCHIVE_EXE']);
  const hidden = sevenZip({ 'payload.exe': FAKE_EXE }, { password: 'pw', encryptNames: true });
  assert.deepEqual(symbols(await inspect(hidden, 'locked.7z')), ['ARCHIVE_ENCRYPTED']);
});

test('stream input, and a stream over the size bound is not read to the end', async () => {
  const zip = zipOf([{ name: 'a.exe', data: FAKE_EXE }]);
  const r = await inspectArchive(Readable.from([zip.subarray(0, 10), zip.subarray(10)]), 'a.zip');
  assert.deepEqual(symbols(r), ['ARCHIVE_EXE']);
  const big = await inspectArchive(Readable.from([Buffer.alloc(600_000), Buffer.alloc(600_000)]), 'big.zip', { limits: { maxTotalSize: 1_000_000 } });
  assert.equal(big.complete, false);
  assert.match(big.notes[0]!, /not inspected/);
});

test('the time limit ends a long walk with a finding, not a hang', async () => {
  // Many small nested zips, each cheap, together over a 1 ms budget.
  const inner = zipOf(Array.from({ length: 200 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.alloc(2000, i) })));
  const outer = zipOf(Array.from({ length: 20 }, (_, i) => ({ name: `z${i}.zip`, data: inner, method: 'store' as const })));
  const r = await inspect(outer, 'slow.zip', { limits: { timeLimitMs: 30, maxEntries: 100_000, maxTotalSize: 1e9 } });
  assert.ok(r.findings.some((f) => f.symbol === 'ARCHIVE_BOMB' && /time limit/.test(f.reason)), JSON.stringify(r.findings.slice(0, 3)));
  assert.equal(r.complete, false);
});

test('bsdtar input files are removed afterwards', async (t) => {
  if (!needBsdtar(t)) return;
  const dir = fs.mkdtempSync('/tmp/portcullis-archtest-');
  try {
    await inspect(bsdtarArchive({ 'a.txt': TEXT }, ['--format', '7zip']), 'a.7z', { tmpDir: dir });
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('mutated archives (bytes flipped, cut, spliced): never a throw, always bounded', async (t) => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const inner = zipOf([{ name: 'x.exe', data: FAKE_EXE }, { name: 'a.txt', data: Buffer.alloc(3000, 0x61) }]);
  const seeds: [string, Buffer][] = [
    ['m.zip', zipOf([{ name: 'inner.zip', data: inner, method: 'store' }, { name: 'b.txt', data: TEXT }])],
    ['m.tar.gz', zlib.gzipSync(tarOf([{ name: 'a.txt', data: Buffer.alloc(4000, 0x62) }, { name: 'inner.zip', data: inner }]))],
    ['m.zip', await encryptedZip([{ name: 'e.txt', data: Buffer.alloc(2000, 0x63) }], 'pw', { zipCrypto: true })],
  ];
  if (fs.existsSync('/usr/bin/bsdtar')) seeds.push(['m.7z', bsdtarArchive({ 'a.txt': Buffer.alloc(4000, 0x64), 'inner.zip': inner }, ['--format', '7zip'])]);
  let runs = 0;
  for (const [name, original] of seeds) {
    const rounds = name.endsWith('.7z') ? 15 : 120;
    for (let i = 0; i < rounds; i++) {
      let m = Buffer.from(original);
      const op = rand(3);
      if (op === 0) for (let k = 0; k < 1 + rand(8); k++) m[rand(m.length)] = rand(256);
      else if (op === 1) m = m.subarray(0, rand(m.length));
      else m = Buffer.concat([m.subarray(0, rand(m.length)), m.subarray(rand(m.length))]);
      const r = await inspect(m, name, { passwords: ['pw'] });
      assert.ok(Array.isArray(r.findings));
      assert.deepEqual(r.notes.filter((n) => n.startsWith('inspection failed')), [], `${name} round ${i}: ${r.notes.join('; ')}`);
      runs++;
    }
  }
  t.diagnostic(`${runs} mutated archives inspected`);
});
