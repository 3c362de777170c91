import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, decidePart, defangName, strongerAction } from './policy.js';
import { showName } from '../../mime/filenames.js';
import { attachmentsConfigSchema, defaultAttachmentsConfig } from './config.js';
import { sniff, UNKNOWN_TYPE, type FileType } from '../../mime/filetype.js';
import type { PartInfo } from '../../mime/inspector.js';
import { fakeElf, fakePe, tinyPdf, tinyPng } from '../../../test/mime/fixtures.js';

const policy = compilePolicy(defaultAttachmentsConfig());

function part(filenames: string[], contentType = 'application/octet-stream', extra: Partial<PartInfo> = {}): PartInfo {
  return { path: '2', depth: 1, contentType, encoding: 'base64', filenames, filename: filenames[0], isAttachment: true, disposition: 'attachment', ...extra };
}
const decide = (p: PartInfo, t: FileType = UNKNOWN_TYPE) => decidePart(p, t, policy);
const symbols = (p: PartInfo, t: FileType = UNKNOWN_TYPE) => decide(p, t).findings.map((f) => f.symbol).sort();

test('the most dangerous types are stripped, other programs and scripts defanged', () => {
  for (const name of ['x.pif', 'SCREEN.SCR', 'a.com', 'panel.cpl', 'link.lnk', 'app.hta', 'a.vbe', 'a.jse', 'a.wsf']) {
    assert.equal(decide(part([name])).action, 'strip', name);
  }
  for (const name of ['setup.exe', 'a.js', 'a.vbs', 'run.bat', 'run.cmd', 'p.ps1', 'i.msi', 'app.jar', 'disk.iso', 'help.chm']) {
    assert.equal(decide(part([name])).action, 'defang', name);
  }
  assert.match(decide(part(['x.scr'])).reason, /screen saver/);
});

test('harmless documents and images pass without findings', () => {
  assert.deepEqual(decide(part(['report.pdf'], 'application/pdf'), sniff(tinyPdf())), {
    action: 'pass', reason: '', findings: [], displayName: 'report.pdf', defangedName: 'report.pdf.txt',
  });
  assert.equal(decide(part(['photo.png'], 'image/png'), sniff(tinyPng())).action, 'pass');
  assert.equal(decide(part(['notes.txt'], 'text/plain')).action, 'pass');
});

test('Windows trimming and case do not hide an extension', () => {
  assert.equal(decide(part(['EVIL.EXE'])).action, 'defang');
  assert.equal(decide(part(['evil.exe.'])).action, 'defang');
  assert.equal(decide(part(['evil.exe   '])).action, 'defang');
  assert.equal(decide(part(['evil.scr . .'])).action, 'strip');
});

test('double extensions and padding are disguises: stripped', () => {
  const d = decide(part(['invoice.pdf.exe']));
  assert.equal(d.action, 'strip');
  assert.deepEqual(d.findings.map((f) => f.symbol), ['ATTACH_DOUBLE_EXT']);
  assert.match(d.reason, /\.exe hidden behind \.pdf/);
  assert.equal(decide(part([`invoice.pdf${' '.repeat(40)}.js`])).action, 'strip');
  assert.deepEqual(symbols(part([`statement${'_'.repeat(30)}.vbs`])), ['ATTACH_DOUBLE_EXT']);
  // Not a disguise: a version number, or a harmless last extension.
  assert.equal(decide(part(['tool-1.2.exe'])).action, 'defang');
  assert.equal(decide(part(['archive.exe.txt'])).action, 'pass');
});

test('right-to-left override and other bidi controls', () => {
  // "invoice‮fdp.exe" reads as "invoiceexe.pdf".
  const d = decide(part(['invoice\u202efdp.exe']));
  assert.equal(d.action, 'strip');
  assert.deepEqual(d.findings.map((f) => f.symbol), ['ATTACH_RTLO']);
  assert.equal(d.displayName, 'invoice<U+202E>fdp.exe');
  assert.equal(d.defangedName, 'invoicefdp.exe.txt');
  // Harmless real extension, still a trick: defanged, and the name cleaned.
  const harmless = decide(part(['photo\u2067gnp.txt']));
  assert.equal(harmless.action, 'defang');
  assert.equal(harmless.defangedName, 'photognp.txt.txt');
});

test('names with NUL, control characters or paths are flagged and cleaned', () => {
  const nul = decide(part(['evil.exe\0.pdf']));
  assert.equal(nul.action, 'defang', 'the part before the NUL is judged too');
  assert.deepEqual(nul.findings.map((f) => f.symbol), ['ATTACH_BAD_NAME']);
  assert.equal(nul.displayName, 'evil.exe<U+0000>.pdf');
  const path = decide(part(['../../etc/cron.d/job']));
  assert.equal(path.action, 'pass', 'a harmless base name: a symbol, no action by default');
  assert.match(path.findings[0]!.reason, /a path and a parent-directory reference/);
  assert.equal(path.defangedName, 'job.txt');
  const strict = compilePolicy(attachmentsConfigSchema.parse({ bad_names: 'defang' }));
  assert.equal(decidePart(part(['../../etc/cron.d/job']), UNKNOWN_TYPE, strict).action, 'defang');
  assert.equal(decide(part(['C:\\Windows\\evil.scr'])).action, 'strip');
  assert.equal(defangName(undefined), 'attachment.bin.txt');
  assert.equal(defangName('say "hi".exe'), 'say _hi_.exe.txt');
});

test('every name counts: a harmless filename does not hide a dangerous Content-Type name', () => {
  assert.equal(decide(part(['report.pdf', 'report.scr'])).action, 'strip');
});

test('executables found by content: defanged, or stripped when dressed as a document or image', () => {
  const renamed = decide(part(['photo.jpg'], 'image/jpeg'), sniff(fakePe()));
  assert.equal(renamed.action, 'strip');
  assert.deepEqual(renamed.findings.map((f) => f.symbol).sort(), ['ATTACH_EXEC_MAGIC', 'ATTACH_TYPE_MISMATCH']);
  assert.match(renamed.reason, /Windows PE executable disguised as "photo.jpg"/);
  const underscore = decide(part(['setup.ex_']), sniff(fakePe()));
  assert.equal(underscore.action, 'defang');
  assert.deepEqual(underscore.findings.map((f) => f.symbol), ['ATTACH_EXEC_MAGIC']);
  assert.equal(decide(part([]), sniff(fakeElf())).action, 'defang');
  // Said and is a program: only the extension rule speaks.
  assert.deepEqual(symbols(part(['setup.exe']), sniff(fakePe())), []);
  // Inline body text is not an attachment: what it contains is for other checks.
  assert.equal(decide(part([], 'text/plain', { isAttachment: false }), sniff(fakePe())).action, 'pass');
});

test('scripts found by content, type mismatches without executables', () => {
  const sh = sniff(Buffer.from('#!/bin/sh\necho hi\n'));
  assert.equal(decide(part(['readme']), sh).action, 'defang');
  assert.deepEqual(symbols(part(['readme']), sh), ['ATTACH_SCRIPT_MAGIC']);
  assert.equal(decide(part(['install.sh']), sh).action, 'defang', 'by its extension');
  assert.equal(decide(part(['notes.txt'], 'text/plain'), sh).action, 'pass');
  const zipAsImage = decide(part(['cat.jpg'], 'image/jpeg'), sniff(Buffer.from('PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00a.txt', 'latin1')));
  assert.equal(zipAsImage.action, 'pass');
  assert.deepEqual(zipAsImage.findings.map((f) => f.symbol), ['ATTACH_TYPE_MISMATCH']);
  assert.deepEqual(symbols(part(['a.png'], 'image/png'), sniff(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))), [], 'image vs image is not worth a symbol');
});

test('configuration: overrides win, actions can be changed, reject is possible', () => {
  const custom = compilePolicy(attachmentsConfigSchema.parse({ extension_actions: { exe: 'strip', iso: 'pass', scr: 'reject' }, disguised: 'reject' }));
  assert.equal(decidePart(part(['a.exe']), UNKNOWN_TYPE, custom).action, 'strip');
  assert.equal(decidePart(part(['a.iso']), UNKNOWN_TYPE, custom).action, 'pass');
  assert.equal(decidePart(part(['a.scr']), UNKNOWN_TYPE, custom).action, 'reject');
  assert.equal(decidePart(part(['a.pdf.js']), UNKNOWN_TYPE, custom).action, 'reject');
  assert.throws(() => attachmentsConfigSchema.parse({ strip_extensions: ['.exe'] }), /extension/);
  assert.throws(() => attachmentsConfigSchema.parse({ unknown_key: 1 }));
  assert.equal(attachmentsConfigSchema.parse({ max_part_scan_size: '1MiB' }).max_part_scan_size, 1024 * 1024);
});

test('helpers', () => {
  assert.equal(strongerAction('defang', 'strip'), 'strip');
  assert.equal(strongerAction('reject', 'pass'), 'reject');
  assert.equal(showName('a\u200bb\u202e.exe'), 'a<U+200B>b<U+202E>.exe');
});

test('the policy is idempotent: a defanged name is left alone, whatever it holds', () => {
  for (const name of ['setup.exe.txt', 'attachment.bin.txt', 'invoicefdp.exe.txt']) {
    assert.equal(decide(part([name], 'application/octet-stream'), sniff(fakePe())).action, 'pass', name);
  }
  // A single ".txt" is not that shape: an executable in notes.txt is still a disguise.
  assert.equal(decide(part(['notes.txt'], 'application/octet-stream'), sniff(fakePe())).action, 'strip');
});
