// The raster images inside a PDF, for the QR search (qr.ts): a quishing PDF is one page with the
// QR code as an image XObject. Image XObjects are always streams of their own (never inside an
// object stream), so a scan for "<< … /Subtype /Image … >> stream" finds them without a PDF
// parser. Decoded: DCTDecode (the stream is a JPEG) and FlateDecode (zlib, with or without PNG
// predictors) of DeviceGray, DeviceRGB or a one-bit mask, 8 or 1 bits per component, also
// FlateDecode before DCTDecode. Not decoded: JBIG2, CCITT fax, JPX, LZW, indexed colour spaces,
// inline images in content streams, encrypted PDFs, and QR codes drawn as vector paths.
import zlib from 'node:zlib';
import { qrInImage, qrInPixels, refusal, type QrResult } from './qr-image.js';

/** Image streams looked at in one PDF. */
const MAX_IMAGES = 10;
/** Bytes a FlateDecode image may inflate to (a 2000x2000 RGB image). */
const MAX_INFLATED = 12 << 20;

/** The QR results of a PDF's images, up to `limit` searched. Never rejects. */
export async function qrInPdf(pdf: Buffer, limit = MAX_IMAGES, over: () => boolean = () => false): Promise<QrResult[]> {
  const results: QrResult[] = [];
  const text = pdf.toString('latin1');
  const re = />>\s*stream\r?\n/g;
  for (let m = re.exec(text); m && results.length < limit && !over(); m = re.exec(text)) {
    const dict = dictionaryBefore(text, m.index + 2);
    if (!dict || !/\/Subtype\s*\/Image\b/.test(dict)) continue;
    const start = m.index + m[0].length;
    const direct = /\/Length\s+(\d+)(?!\s+\d+\s+R)/.exec(dict);
    let end = direct ? start + Number(direct[1]) : -1;
    if (end < 0 || end > pdf.length || text.slice(end, end + 12).trim().slice(0, 9) !== 'endstream') {
      end = text.indexOf('endstream', start);
      if (end < 0) break;
    }
    results.push(await imageResult(dict, pdf.subarray(start, end)));
    re.lastIndex = end;
  }
  return results;
}

/** The dictionary text that ends at `end` (its ">>"), back to the "obj" that opens it. */
function dictionaryBefore(text: string, end: number): string | undefined {
  const from = Math.max(0, end - 4096);
  const obj = text.lastIndexOf('obj', end);
  if (obj < from) return undefined;
  return text.slice(obj + 3, end);
}

async function imageResult(dict: string, data: Buffer): Promise<QrResult> {
  const filters = [...(/\/Filter\s*(\[[^\]]*\]|\/\w+)/.exec(dict)?.[1] ?? '').matchAll(/\/(\w+)/g)].map((f) => f[1]!);
  const width = Number(/\/Width\s+(\d+)/.exec(dict)?.[1] ?? 0);
  const height = Number(/\/Height\s+(\d+)/.exec(dict)?.[1] ?? 0);
  const why = refusal({ width, height });
  if (why) return { refused: why };
  let bytes = data;
  for (const [i, f] of filters.entries()) {
    if (f === 'DCTDecode' || f === 'DCT') return i === filters.length - 1 ? qrInImage(bytes) : { refused: 'filter after DCTDecode' };
    if (f !== 'FlateDecode' && f !== 'Fl') return { refused: `${f} image not decoded` };
    try {
      bytes = zlib.inflateSync(bytes, { maxOutputLength: MAX_INFLATED });
    } catch {
      // Many writers end a stream without the zlib checksum; what inflated up to there is kept.
      try {
        bytes = zlib.inflateSync(bytes, { maxOutputLength: MAX_INFLATED, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch (err) {
        return { refused: `corrupt FlateDecode stream: ${String((err as Error)?.message ?? err).slice(0, 60)}` };
      }
    }
  }
  const mask = /\/ImageMask\s+true/.test(dict);
  const space = /\/ColorSpace\s*\/(\w+)/.exec(dict)?.[1];
  const channels = mask || space === 'DeviceGray' || space === 'G' || space === 'CalGray' ? 1 : space === 'DeviceRGB' || space === 'RGB' || space === 'CalRGB' ? 3 : 0;
  if (!channels) return { refused: `colour space ${space ?? '(indirect)'} not decoded` };
  const bpc = mask ? 1 : Number(/\/BitsPerComponent\s+(\d+)/.exec(dict)?.[1] ?? 8);
  if (bpc !== 8 && !(bpc === 1 && channels === 1)) return { refused: `${bpc} bits per component not decoded` };
  const rowBytes = Math.ceil((width * channels * bpc) / 8);
  const predictor = Number(/\/Predictor\s+(\d+)/.exec(dict)?.[1] ?? 1);
  if (predictor >= 10) bytes = unpredict(bytes, rowBytes, Math.max(1, (channels * bpc) >> 3), height);
  else if (predictor !== 1) return { refused: `TIFF predictor not decoded` };
  if (bytes.length < rowBytes * height) return { refused: 'image data shorter than its dimensions' };
  let pixels: Uint8Array = bytes;
  if (bpc === 1) {
    // One bit a pixel: 0 is black in DeviceGray and painted (in the fill colour, black as a rule)
    // in a stencil mask, 1 white or the page; /Decode [1 0] swaps them.
    const decodeInverted = /\/Decode\s*\[\s*1\s+0\s*\]/.test(dict);
    pixels = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = (bytes[y * rowBytes + (x >> 3)]! >> (7 - (x & 7))) & 1;
        pixels[y * width + x] = (bit === 1) !== decodeInverted ? 255 : 0;
      }
    }
  } else if (rowBytes !== width * channels) {
    return { refused: 'odd row length' };
  }
  return qrInPixels(pixels, width, height, channels as 1 | 3);
}

/** Undoes PNG row filters (FlateDecode /Predictor 10–15): each row starts with its filter type. */
function unpredict(data: Buffer, rowBytes: number, bpp: number, height: number): Buffer {
  const out = Buffer.alloc(rowBytes * height);
  for (let y = 0; y < height; y++) {
    const src = y * (rowBytes + 1);
    if (src + rowBytes >= data.length + 1) break;
    const type = data[src]!;
    const row = y * rowBytes;
    for (let x = 0; x < rowBytes; x++) {
      const raw = data[src + 1 + x] ?? 0;
      const a = x >= bpp ? out[row + x - bpp]! : 0;
      const b = y > 0 ? out[row - rowBytes + x]! : 0;
      const c = x >= bpp && y > 0 ? out[row - rowBytes + x - bpp]! : 0;
      let v = raw;
      if (type === 1) v += a;
      else if (type === 2) v += b;
      else if (type === 3) v += (a + b) >> 1;
      else if (type === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[row + x] = v & 0xff;
    }
  }
  return out;
}
