// Generated MIME fixtures for the attachment tests: real small files (a PDF, a PNG) that must
// pass byte-identical, fake executables with the right magic, and messages built by nodemailer's
// MailComposer the way real clients build them.
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { crc32 } from '../helpers/archive-fixtures.js';

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid 8×8 RGB PNG (a small gradient). */
export function tinyPng(): Buffer {
  const w = 8;
  const h = 8;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(h * (1 + w * 3));
  for (let y = 0; y < h; y++) {
    raw[y * (1 + w * 3)] = 0;
    for (let x = 0; x < w; x++) raw.set([x * 32, y * 32, 128], y * (1 + w * 3) + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A valid one-page PDF with a line of text, cross-reference table and all. */
export function tinyPdf(): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    null,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  const stream = 'BT /F1 12 Tf 20 50 Td (Quarterly invoice) Tj ET';
  objects[3] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((o, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) out += `${String(off).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** A fake Windows PE: a DOS header pointing at "PE\0\0", then filler. */
export function fakePe(size = 2048): Buffer {
  const b = Buffer.alloc(size, 0x90);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  return b;
}

export function fakeElf(size = 1024): Buffer {
  const b = Buffer.alloc(size, 0);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  return b;
}

export interface Attachment {
  filename?: string;
  content: Buffer | string;
  contentType?: string;
  contentDisposition?: 'attachment' | 'inline';
}

/** A message as MailComposer builds it (CRLF), with a text body and these attachments. */
export async function compose(attachments: Attachment[], options: { subject?: string; text?: string } = {}): Promise<Buffer> {
  const mail = new MailComposer({
    from: 'Alice <alice@example.org>',
    to: 'bob@example.net',
    subject: options.subject ?? 'documents',
    text: options.text ?? 'Hello Bob,\nthe files you asked for.\n',
    attachments,
  });
  return new Promise((resolve, reject) => mail.compile().build((err, msg) => (err ? reject(err) : resolve(msg))));
}

/** A stream of `buf` in chunks of `size` (small sizes cut lines anywhere). */
export function chunked(buf: Buffer, size = 65536): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

/** A hand-made multipart message: header lines, then parts given as raw header+body text. */
export function multipart(parts: string[], boundary = 'b0undary', extraHeaders: string[] = []): Buffer {
  const head = ['From: alice@example.org', 'To: bob@example.net', 'Subject: test', 'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`, ...extraHeaders].join('\r\n');
  return Buffer.from(`${head}\r\n\r\npreamble\r\n${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`, 'latin1');
}

/** Wraps content as a base64 part with a header block. */
export function b64part(headers: string[], content: Buffer): string {
  return `${headers.join('\r\n')}\r\nContent-Transfer-Encoding: base64\r\n\r\n${content.toString('base64').replace(/.{76}/g, '$&\r\n')}`;
}
