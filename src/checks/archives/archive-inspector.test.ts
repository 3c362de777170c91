// The archive inspector through the shared MIME walker (src/mime/walk.ts): what the attachment
// check will see. One test uses the real clamd for a virus inside a password-protected zip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { walkMessage } from '../../mime/walk.js';
import { archiveInspector } from './archive-inspector.js';
import { archiveConfigSchema } from '../av/config.js';
import { EICAR, EICAR_SIGNATURE, needClamd, startClamd } from '../../../test/helpers/clamd.js';
import { encryptedZip, zipOf, FAKE_EXE } from '../../../test/helpers/archive-fixtures.js';

const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');

/** Parts in order: text or attachment. */
function mail(subject: string, parts: ({ text: string } | { name: string; data: Buffer })[]): Readable {
  const body = parts.map((p) => ('text' in p
    ? `--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${p.text}\r\n`
    : `--zz\r\nContent-Type: application/zip; name="${p.name}"\r\nContent-Disposition: attachment; filename="${p.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(p.data)}\r\n`)).join('');
  return Readable.from([Buffer.from(`From: a@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n${body}--zz--\r\n`)]);
}

const config = (over: Record<string, unknown> = {}) => archiveConfigSchema.parse(over);

test('an executable in a zip: ARCHIVE_EXE and the policy\'s action on that part', async () => {
  const msg = () => mail('tools', [{ text: 'see attached' }, { name: 'tools.zip', data: zipOf([{ name: 'setup.exe', data: FAKE_EXE }]) }]);
  const r = await walkMessage(msg(), { inspectors: [archiveInspector({ config: config() })] });
  const zipPart = r.parts.find((p) => p.filename === 'tools.zip')!;
  const f = zipPart.findings.find((x) => x.inspector === 'archive')!;
  assert.equal(f.action, 'strip');
  assert.equal(f.reason, 'archive holds an executable: tools.zip/setup.exe');
  assert.deepEqual(f.symbols!.map((s) => s.name), ['ARCHIVE_EXE']);
  const scored = await walkMessage(msg(), { inspectors: [archiveInspector({ config: config({ executable_inside: 'score' }) })] });
  assert.equal(scored.parts.find((p) => p.filename === 'tools.zip')!.findings[0]!.action, undefined);
});

test('an encrypted zip whose password comes in a later text part: opened in finish()', async () => {
  const enc = await encryptedZip([{ name: 'report.txt', data: Buffer.from('quarterly') }], 'Kx-42');
  const r = await walkMessage(mail('report', [{ name: 'report.zip', data: enc }, { text: 'The password is Kx-42' }]), { inspectors: [archiveInspector({ config: config() })] });
  const zipPart = r.parts.find((p) => p.filename === 'report.zip')!;
  assert.deepEqual(zipPart.findings.filter((f) => f.symbols?.length), [], 'nothing decided before the text was seen');
  const late = r.late.find((f) => f.inspector === 'archive')!;
  assert.equal(late.path, zipPart.path);
  assert.deepEqual(late.symbols!.map((s) => s.name), ['ARCHIVE_ENCRYPTED_OPENED']);
});

test('an encrypted zip nobody can open: ARCHIVE_ENCRYPTED carrying the refusal policy.actions may send; encrypted: strip strips that part', async () => {
  const enc = await encryptedZip([{ name: 'a.txt', data: Buffer.from('x') }], 'nope-123');
  const r = await walkMessage(mail('x', [{ text: 'hello' }, { name: 'a.zip', data: enc }]), { inspectors: [archiveInspector({ config: config() })] });
  const late = r.late.find((f) => f.inspector === 'archive')!;
  assert.deepEqual(late.symbols!.map((s) => s.name), ['ARCHIVE_ENCRYPTED']);
  assert.equal(late.action, undefined);
  assert.equal(late.symbols![0]!.reply?.text, 'Error: message refused: encrypted archive that cannot be scanned: a.zip');
  const stripped = await walkMessage(mail('x', [{ text: 'hello' }, { name: 'a.zip', data: enc }]), { inspectors: [archiveInspector({ config: config({ encrypted: 'strip' }) })] });
  assert.equal(stripped.late.find((f) => f.inspector === 'archive')!.action, 'strip');
});

test('with clamd: EICAR in a password-protected zip, password in the subject → reject with AV_VIRUS', async (t) => {
  if (!needClamd(t)) return;
  const clamd = await startClamd();
  try {
    const enc = await encryptedZip([{ name: 'invoice.doc', data: EICAR }], 'Q7-q7');
    const r = await walkMessage(mail('Invoice, password: Q7-q7', [{ text: 'attached' }, { name: 'inv.zip', data: enc }]), {
      inspectors: [archiveInspector({ config: config(), clamd: clamd.client() })],
    });
    const f = r.parts.find((p) => p.filename === 'inv.zip')!.findings.find((x) => x.inspector === 'archive')!;
    assert.equal(f.action, 'reject');
    assert.ok(f.symbols!.some((s) => s.name === 'AV_VIRUS' && s.reason.startsWith(EICAR_SIGNATURE)), JSON.stringify(f.symbols));
  } finally {
    await clamd.stop();
  }
});
