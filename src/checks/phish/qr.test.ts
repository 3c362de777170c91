import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import QRCode from 'qrcode';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { GifWriter } from 'omggif';
import { bufferModel } from '../../mime/model.js';
import { SHIPPED_RULES } from '../rules/config.js';
import { judgeLink, qrInspector, RISKY_TLDS } from './qr.js';
import { finderPatterns, qrInImage } from './qr-image.js';
import { qrInPdf } from './qr-pdf.js';

const PHISH = 'https://login.micros0ft-verify.example.cfd/o365/#alice@example.org';

/** A QR code as grey pixels (0 black, 255 white), `scale` pixels a module, with a 4-module quiet zone. */
function qrPixels(text: string, scale = 6): { grey: Uint8Array; width: number } {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const n = qr.modules.size;
  const width = (n + 8) * scale;
  const grey = new Uint8Array(width * width).fill(255);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (!qr.modules.get(y, x)) continue;
      for (let dy = 0; dy < scale; dy++) grey.fill(0, ((y + 4) * scale + dy) * width + (x + 4) * scale, ((y + 4) * scale + dy) * width + (x + 5) * scale);
    }
  }
  return { grey, width };
}

const rgba = (grey: Uint8Array) => Buffer.from(Uint8Array.from({ length: grey.length * 4 }, (_, i) => (i % 4 === 3 ? 255 : grey[i >> 2]!)));

function qrJpeg(text: string): Buffer {
  const { grey, width } = qrPixels(text);
  return jpeg.encode({ data: rgba(grey), width, height: width }, 85).data;
}

function qrGif(text: string): Buffer {
  const { grey, width } = qrPixels(text);
  const out = Buffer.alloc(width * width + 1024);
  const gif = new GifWriter(out, width, width, { palette: [0x000000, 0xffffff] });
  gif.addFrame(0, 0, width, width, Array.from(grey, (v) => (v ? 1 : 0)));
  return out.subarray(0, gif.end());
}

/** A minimal PDF: one page showing one image XObject with the given dictionary entries and data. */
function pdfWith(entries: string, data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let size = 0;
  const add = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    parts.push(buf);
    size += buf.length;
  };
  const obj = (n: number, body: string, stream?: Buffer) => {
    offsets[n] = size;
    add(`${n} 0 obj\n${body}\n`);
    if (stream) {
      add('stream\n');
      add(stream);
      add('\nendstream\n');
    }
    add('endobj\n');
  };
  add('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n');
  obj(1, '<< /Type /Catalog /Pages 2 0 R >>');
  obj(2, '<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  obj(3, '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>');
  obj(4, `<< /Type /XObject /Subtype /Image ${entries} /Length ${data.length} >>`, data);
  const content = Buffer.from('q 200 0 0 200 100 500 cm /Im1 Do Q');
  obj(5, `<< /Length ${content.length} >>`, content);
  const xref = size;
  add(`xref\n0 6\n0000000000 65535 f \n${offsets.slice(1).map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`);
  add(`trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

const judge = { targets: new Map([['microsoft', 'microsoft.com'], ['example', 'example.org']]), shorteners: ['bit.ly'] };
const names = (text: string, recipients: string[] = []) => judgeLink(text, 'image', judge, recipients).map((h) => h.name).sort();

test('PNG, JPEG and GIF renderings of a QR code are decoded to their text', async () => {
  const png = await QRCode.toBuffer(PHISH, { type: 'png', margin: 4, scale: 6 });
  for (const [kind, image] of [['png', png], ['jpeg', qrJpeg(PHISH)], ['gif', qrGif(PHISH)]] as const) {
    assert.deepEqual(await qrInImage(image), { found: PHISH }, kind);
  }
});

test('a QR code drawn on a transparent background is read as on white', async () => {
  const { grey, width } = qrPixels('https://example.net/t');
  const png = new PNG({ width, height: width });
  // Black modules opaque, the rest transparent black: read as black everywhere unless alpha counts.
  for (let i = 0; i < grey.length; i++) png.data.writeUInt32BE(grey[i] ? 0x00000000 : 0x000000ff, i * 4);
  assert.deepEqual(await qrInImage(PNG.sync.write(png)), { found: 'https://example.net/t' });
});

test('images without a QR code, corrupt ones and ones of refused sizes give no text and never throw', async () => {
  const photo = new PNG({ width: 300, height: 200 });
  for (let i = 0; i < photo.data.length; i++) photo.data[i] = i % 4 === 3 ? 255 : (i * 7919) % 251;
  assert.deepEqual(await qrInImage(PNG.sync.write(photo)), { none: true });
  assert.deepEqual(await qrInImage(jpeg.encode({ data: photo.data, width: 300, height: 200 }, 80).data), { none: true });

  const png = await QRCode.toBuffer(PHISH, { type: 'png', scale: 6 });
  const cut = png.subarray(0, png.length >> 1);
  assert.match((await qrInImage(cut) as { refused: string }).refused, /^corrupt png/);
  const jpg = qrJpeg(PHISH);
  const garbled = Buffer.from(jpg);
  garbled.fill(0x55, 700, 3000);
  assert.ok(!('found' in await qrInImage(garbled)) || (await qrInImage(garbled) as { found: string }).found === PHISH, 'a garbled JPEG decodes to garbage or nothing, not a crash');
  assert.match((await qrInImage(Buffer.from('GIF89a\x00\x01\x00\x01junk', 'latin1')) as { refused: string }).refused, /^corrupt gif/);
  assert.deepEqual(await qrInImage(Buffer.from('not an image')), { refused: 'not a PNG, JPEG or GIF' });

  // A tracking pixel and a header claiming 60000x60000 pixels: refused from the header, fast.
  const pixel = new PNG({ width: 1, height: 1 });
  assert.deepEqual(await qrInImage(PNG.sync.write(pixel)), { refused: 'smaller than 64x64' });
  const huge = Buffer.from(png);
  huge.writeUInt32BE(60000, 16);
  huge.writeUInt32BE(60000, 20);
  const jhuge = Buffer.from(jpg);
  const sof = jhuge.indexOf(Buffer.from([0xff, 0xc0]));
  jhuge.writeUInt16BE(50000, sof + 5);
  jhuge.writeUInt16BE(50000, sof + 7);
  const started = performance.now();
  assert.deepEqual(await qrInImage(huge), { refused: '60000x60000 is too large' });
  assert.deepEqual(await qrInImage(jhuge), { refused: '50000x50000 is too large' });
  assert.ok(performance.now() - started < 20, 'refused from the header, without decoding');
});

test('a PDF with the QR code as a JPEG (DCTDecode) or Flate-compressed image is read', async () => {
  const { grey, width } = qrPixels(PHISH);
  const dims = `/Width ${width} /Height ${width} /BitsPerComponent 8`;
  const dct = pdfWith(`${dims} /ColorSpace /DeviceRGB /Filter /DCTDecode`, qrJpeg(PHISH));
  assert.deepEqual(await qrInPdf(dct), [{ found: PHISH }]);
  const flate = pdfWith(`${dims} /ColorSpace /DeviceGray /Filter /FlateDecode`, zlib.deflateSync(grey));
  assert.deepEqual(await qrInPdf(flate), [{ found: PHISH }]);
  // PNG predictors (as pdfkit and most writers use): each row "Up"-filtered.
  const rows = Buffer.concat(Array.from({ length: width }, (_, y) => Buffer.concat([Buffer.from([2]), Buffer.from(grey.subarray(y * width, (y + 1) * width).map((v, x) => (v - (y ? grey[(y - 1) * width + x]! : 0)) & 0xff))])));
  const predicted = pdfWith(`${dims} /ColorSpace /DeviceGray /Filter [/FlateDecode] /DecodeParms << /Predictor 15 /Columns ${width} >>`, zlib.deflateSync(rows));
  assert.deepEqual(await qrInPdf(predicted), [{ found: PHISH }]);
  // A one-bit stencil mask (0 = painted black).
  const row = Math.ceil(width / 8);
  const bits = Buffer.alloc(row * width, 0);
  for (let y = 0; y < width; y++) for (let x = 0; x < width; x++) if (grey[y * width + x]) bits[y * row + (x >> 3)]! |= 0x80 >> (x & 7);
  assert.deepEqual(await qrInPdf(pdfWith(`/Width ${width} /Height ${width} /ImageMask true /Filter /FlateDecode`, zlib.deflateSync(bits))), [{ found: PHISH }]);
  // What is not decoded says so; a corrupt stream is refused, not thrown.
  assert.deepEqual(await qrInPdf(pdfWith(`${dims} /ColorSpace /DeviceGray /Filter /JBIG2Decode`, Buffer.alloc(10))), [{ refused: 'JBIG2Decode image not decoded' }]);
  assert.match(((await qrInPdf(pdfWith(`${dims} /ColorSpace /DeviceGray /Filter /FlateDecode`, Buffer.from('garbage'))))[0] as { refused: string }).refused, /^corrupt FlateDecode/);
  assert.deepEqual(await qrInPdf(pdfWith(`/Width 9000 /Height 9000 /ColorSpace /DeviceGray /Filter /FlateDecode`, Buffer.alloc(10))), [{ refused: '9000x9000 is too large' }]);
  assert.deepEqual(await qrInPdf(Buffer.from('%PDF-1.4\nnothing here')), []);
});

test('the link a QR code holds is judged: IP, look-alike, shortener, abused TLD, the recipient\'s address', () => {
  assert.deepEqual(names('https://www.example.org/menu'), ['QR_CODE_LINK']);
  assert.deepEqual(names('WIFI:S:guest;T:WPA;P:secret;;'), [], 'not a web link');
  assert.deepEqual(names('http://192.0.2.7/login'), ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK']);
  assert.deepEqual(names('http://3221225991/login'), ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK'], 'a decimal IPv4 address');
  assert.deepEqual(names('https://micros0ft.com/auth'), ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK']);
  assert.deepEqual(names('https://bit.ly/3xYz'), ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK']);
  assert.deepEqual(names('https://docs.share-files.sbs/x'), ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK']);
  assert.deepEqual(names('https://microsoft.com/x'), ['QR_CODE_LINK'], 'the real domain');
  assert.deepEqual(names('https://kit.example.net/#alice@example.org', ['alice@example.org']), ['QR_CODE_LINK', 'QR_CODE_RECIPIENT']);
  const b64 = Buffer.from('alice@example.org').toString('base64');
  assert.deepEqual(names(`https://kit.example.net/p?e=${b64}`, ['alice@example.org']), ['QR_CODE_LINK', 'QR_CODE_RECIPIENT']);
  assert.deepEqual(names('https://kit.example.net/p?e=alice%40example.org'), ['QR_CODE_LINK', 'QR_CODE_RECIPIENT'], 'any address when recipients are unknown');
  assert.deepEqual(names('https://kit.example.net/#bob@example.org', ['alice@example.org']), ['QR_CODE_LINK'], 'someone else\'s address');
  const long = judgeLink(`https://example.net/${'a'.repeat(300)}`, 'image', judge, []);
  assert.ok(long[0]!.reason.length < 160 && long[0]!.reason.endsWith('...'), 'the URL in the reason is truncated');
});

test('RISKY_TLDS is the list of the rule URI_RISKY_TLD', () => {
  const rule = /^uri\s+URI_RISKY_TLD\s.*?\(\?:([a-z|]+)\)/m.exec(fs.readFileSync(path.join(SHIPPED_RULES, '40_uri.cf'), 'utf8'))?.[1];
  assert.ok(rule);
  assert.deepEqual([...RISKY_TLDS].sort(), rule.split('|').sort());
});

function mail(parts: { type: string; name?: string; inline?: boolean; data: Buffer }[]): Buffer {
  const lines = ['From: a@example.net', 'To: alice@example.org', 'Subject: Your mailbox', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/plain', '', 'Scan the code to keep your mailbox.'];
  for (const p of parts) {
    lines.push('--b', `Content-Type: ${p.type}${p.name ? `; name="${p.name}"` : ''}`, `Content-Disposition: ${p.inline ? 'inline' : 'attachment'}${p.name ? `; filename="${p.name}"` : ''}`, 'Content-Transfer-Encoding: base64', '', p.data.toString('base64').replace(/.{76}/g, '$&\r\n'));
  }
  lines.push('--b--', '');
  return Buffer.from(lines.join('\r\n'));
}

async function symbolsOf(raw: Buffer, budgetMs?: number): Promise<string[]> {
  const model = bufferModel(raw, { maxScanBytes: 1 << 20, walk: { inspectors: [qrInspector({ ownDomains: ['example.org'], budgetMs })] } });
  const walk = await model.mime();
  return walk.parts.flatMap((p) => p.findings.flatMap((f) => (f.symbols ?? []).map((s) => `${p.path} ${s.name}`))).sort();
}

test('the inspector reads attached and inline images and PDFs from the walk; each symbol once a message', async () => {
  const png = await QRCode.toBuffer(PHISH, { type: 'png', scale: 6 });
  assert.deepEqual(await symbolsOf(mail([{ type: 'image/png', inline: true, data: png }])), ['2 QR_CODE_LINK', '2 QR_CODE_RECIPIENT', '2 QR_CODE_SUSPICIOUS_LINK']);
  const { width } = qrPixels(PHISH);
  const pdf = pdfWith(`/Width ${width} /Height ${width} /BitsPerComponent 8 /ColorSpace /DeviceRGB /Filter /DCTDecode`, qrJpeg(PHISH));
  // Declared as octet-stream: the sniffed type decides.
  assert.deepEqual(await symbolsOf(mail([{ type: 'application/octet-stream', name: 'Document.pdf', data: pdf }, { type: 'image/jpeg', name: 'qr.jpg', data: qrJpeg(PHISH) }])),
    ['2 QR_CODE_LINK', '2 QR_CODE_RECIPIENT', '2 QR_CODE_SUSPICIOUS_LINK']);
  const benign = await QRCode.toBuffer('https://www.example.org/menu', { type: 'png', scale: 6 });
  assert.deepEqual(await symbolsOf(mail([{ type: 'image/png', name: 'menu.png', data: benign }])), ['2 QR_CODE_LINK']);
  assert.deepEqual(await symbolsOf(mail([{ type: 'image/png', name: 'broken.png', data: png.subarray(0, 200) }, { type: 'image/gif', name: 'x.gif', data: Buffer.from('GIF89a') }])), []);
});

test('at most five images a message are searched, and none once the time budget is spent', async () => {
  const noise = new PNG({ width: 200, height: 200 });
  for (let i = 0; i < noise.data.length; i++) noise.data[i] = i % 4 === 3 ? 255 : (i * 31) % 256;
  const png = await QRCode.toBuffer(PHISH, { type: 'png', scale: 6 });
  const five = Array.from({ length: 5 }, () => ({ type: 'image/png', data: PNG.sync.write(noise) }));
  // A budget no loaded test machine exhausts, so that only the count limits.
  assert.deepEqual(await symbolsOf(mail([...five, { type: 'image/png', data: png }]), 60_000), [], 'the sixth image is not searched');
  assert.deepEqual(await symbolsOf(mail([...five.slice(1), { type: 'image/png', data: png }]), 60_000), ['6 QR_CODE_LINK', '6 QR_CODE_RECIPIENT', '6 QR_CODE_SUSPICIOUS_LINK']);
  assert.deepEqual(await symbolsOf(mail([{ type: 'image/png', data: PNG.sync.write(noise) }, { type: 'image/png', data: png }]), 0), [], 'no budget: nothing searched');
});

test('finder patterns: a QR code shows its three (data modules may mimic more), a page of text-like strokes none', () => {
  const { grey, width } = qrPixels(PHISH, 3);
  assert.ok(finderPatterns(new Uint8ClampedArray(rgba(grey)), width, width, 10) >= 3);
  // "Text": rows of dark strokes of varying widths, 1:1:3:1:1 along some rows but not down a column.
  const w = 400, h = 300;
  const page = new Uint8ClampedArray(w * h * 4).fill(255);
  for (let y = 0; y < h; y++) {
    if (y % 16 > 9) continue;
    for (let x = 0; x < w; x++) if (((x * 7 + (y >> 4) * 13) % 23) < [2, 2, 6, 2, 2][x % 5]!) page.fill(0, (y * w + x) * 4, (y * w + x) * 4 + 3);
  }
  assert.equal(finderPatterns(page, w, h, 10), 0);
});
