// QR codes in raster images: the pixels of a PNG, JPEG or GIF (or of a PDF's embedded image,
// qr-pdf.ts), handed to jsQR. Most images in mail are logos, photos and tracking pixels, and
// decoding a photo costs far more than looking at its header, so the dimensions are read from
// the header first and images a QR code is not rendered as (tiny, or huge) are refused before a
// pixel is decoded. Decoding is sharp's (libvips, native): it shrinks a JPEG while decoding it
// and works on libuv's thread pool, where pure-JavaScript decoders (jpeg-js) took 10–20 times as
// long on the event loop; large images come out shrunk for the search, which costs jsQR by the pixel.
import jsqrModule from 'jsqr';
import sharp, { type OutputInfo } from 'sharp';

// jsqr is CommonJS with an "exports.default": Node's ESM import gives module.exports, TypeScript
// types it as the namespace; .default is the function for both.
const jsQR = jsqrModule.default;

// Every image in mail is seen once: libvips's operation cache would only hold memory.
sharp.cache(false);

export type RasterKind = 'png' | 'jpeg' | 'gif';

/** Images smaller than this on a side hold no QR code a phone scans (and are mostly tracking pixels). */
export const MIN_SIDE = 64;
/** Images larger than this on a side are refused undecoded: no QR image is this large, and decoding costs. */
export const MAX_SIDE = 4000;
/** Pixels decoded at most for one image (header dimensions, before decoding). */
export const MAX_PIXELS = 8_000_000;
/** The QR search runs on at most this many pixels a side; larger images are shrunk first. */
const SEARCH_SIDE = 800;

export interface Dimensions {
  readonly width: number;
  readonly height: number;
}

/** What the QR search found in one image: the decoded text, or why it was not searched. */
export type QrResult =
  | { readonly found: string }
  | { readonly none: true }
  | { readonly refused: string };

/** Which raster format the bytes are, from their magic. */
export function rasterKind(b: Buffer): RasterKind | undefined {
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && /^GIF8[79]a$/.test(b.toString('latin1', 0, 6))) return 'gif';
  return undefined;
}

/** The image's width and height from its header, without decoding it; undefined when unreadable. */
export function dimensions(kind: RasterKind, b: Buffer): Dimensions | undefined {
  if (kind === 'png') return b.length >= 24 && b.toString('latin1', 12, 16) === 'IHDR' ? { width: b.readUInt32BE(16), height: b.readUInt32BE(20) } : undefined;
  if (kind === 'gif') return b.length >= 10 ? { width: b.readUInt16LE(6), height: b.readUInt16LE(8) } : undefined;
  // JPEG: walk the marker segments to the first start-of-frame (SOF0–SOF15 but DHT, JPG, DAC).
  let i = 2;
  while (i + 9 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) { i++; continue; }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    const length = b.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    }
    if (marker === 0xda || length < 2) return undefined;
    i += 2 + length;
  }
  return undefined;
}

/** Why an image of these dimensions is not searched, or undefined when it is. */
export function refusal(d: Dimensions): string | undefined {
  if (d.width < MIN_SIDE || d.height < MIN_SIDE) return `smaller than ${MIN_SIDE}x${MIN_SIDE}`;
  if (d.width > MAX_SIDE || d.height > MAX_SIDE || d.width * d.height > MAX_PIXELS) return `${d.width}x${d.height} is too large`;
  return undefined;
}

/** Decodes a PNG, JPEG or GIF (first frame) and searches it for a QR code. Never rejects. */
export async function qrInImage(b: Buffer): Promise<QrResult> {
  const kind = rasterKind(b);
  if (!kind) return { refused: 'not a PNG, JPEG or GIF' };
  const d = dimensions(kind, b);
  if (!d) return { refused: `unreadable ${kind} header` };
  const why = refusal(d);
  if (why) return { refused: why };
  let grey: { data: Buffer; info: OutputInfo };
  try {
    // Transparent pixels become white (a QR code drawn on a transparent background); the
    // header's dimensions bound what sharp may allocate, whatever the data says later.
    grey = await sharp(b, { limitInputPixels: MAX_PIXELS, pages: 1 })
      .flatten({ background: '#ffffff' })
      .resize({ width: SEARCH_SIDE, height: SEARCH_SIDE, fit: 'inside', withoutEnlargement: true })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    return { refused: `corrupt ${kind}: ${String((err as Error)?.message ?? err).slice(0, 80)}` };
  }
  const { width, height, channels } = grey.info;
  return channels === 1 ? qrInPixels(grey.data, width, height, 1) : { refused: `unexpected ${channels} channels` };
}

/**
 * Searches pixels (1 channel grey, 3 RGB or 4 RGBA, 8 bits) for a QR code. Transparent pixels
 * count as white (a QR code drawn on a transparent background), and images larger than
 * SEARCH_SIDE are shrunk by an integer factor, averaging, so that modules stay sharp.
 */
export function qrInPixels(data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): QrResult {
  if (data.length < width * height * channels) return { refused: 'truncated pixel data' };
  const f = Math.max(1, Math.ceil(Math.max(width, height) / SEARCH_SIDE));
  const w = Math.floor(width / f);
  const h = Math.floor(height / f);
  if (w < 21 || h < 21) return { none: true };
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let dy = 0; dy < f; dy++) {
        let p = ((y * f + dy) * width + x * f) * channels;
        for (let dx = 0; dx < f; dx++, p += channels) sum += grey(data, p, channels);
      }
      const v = sum / (f * f);
      const o = (y * w + x) * 4;
      out[o] = out[o + 1] = out[o + 2] = v;
      out[o + 3] = 255;
    }
  }
  // Two of the three finders suffice: blur or a logo over a corner may hide one from this scan.
  if (!qrLike(out, w, h) || finderPatterns(out, w, h, 2) < 2) return { none: true };
  const code = jsQR(out, w, h, { inversionAttempts: 'dontInvert' });
  return code && code.data ? { found: code.data } : { none: true };
}

/**
 * Whether the picture can hold a rendered QR code, before the costly search: jsQR takes tens to
 * hundreds of milliseconds on a photo or a noisy picture (every dark blob is a finder-pattern
 * candidate), while a QR code sent by mail is rendered, not photographed: mostly near-black and
 * near-white pixels, in flat runs (a module is several pixels wide). Photos fail the first test,
 * noise and fine texture the second; screenshots of a document with a QR code pass both.
 */
function qrLike(rgba: Uint8ClampedArray, w: number, h: number): boolean {
  let dark = 0, light = 0, flat = 0, pairs = 0;
  for (let y = 0; y < h; y += 2) {
    let prev = rgba[y * w * 4]!;
    for (let x = 1; x < w; x++) {
      const v = rgba[(y * w + x) * 4]!;
      if (v < 80) dark++;
      else if (v > 175) light++;
      if (Math.abs(v - prev) < 32) flat++;
      pairs++;
      prev = v;
    }
  }
  return dark >= pairs * 0.02 && light >= pairs * 0.1 && dark + light >= pairs * 0.6 && flat >= pairs * 0.7;
}

/**
 * Finder patterns in the picture: the three squares in a QR code's corners, the same at every
 * size, which read dark, light, dark, light, dark in the ratio 1:1:3:1:1 across and down their
 * centre. Rows are scanned for the ratio, each match is checked down its centre column (as
 * ZXing does), and the confirmed centres are grouped; a code shows three groups. Text and table
 * lines match along a row often but rarely down the column too, so a rendered invoice or banner
 * is spared jsQR, which costs 50–400 ms on such a page. Exported for measurements.
 */
export function finderPatterns(rgba: Uint8ClampedArray, w: number, h: number, enough = 3): number {
  const dark = (x: number, y: number) => rgba[(y * w + x) * 4]! < 128;
  const centres: { x: number; y: number; u: number }[] = [];
  const runs = new Int32Array(w + 1);
  const starts = new Int32Array(w + 1);
  for (let y = 0; y < h; y++) {
    // Run lengths of the row, thresholded at mid-grey (rendered codes are high-contrast).
    let n = 0;
    let d = dark(0, y);
    const firstDark = d;
    let len = 0;
    for (let x = 0; x < w; x++) {
      const dx = dark(x, y);
      if (dx === d) len++;
      else {
        starts[n + 1] = x;
        runs[n++] = len;
        d = dx;
        len = 1;
      }
    }
    runs[n++] = len;
    for (let i = firstDark ? 0 : 1; i + 4 < n; i += 2) {
      const u = (runs[i]! + runs[i + 1]! + runs[i + 2]! + runs[i + 3]! + runs[i + 4]!) / 7;
      if (u < 1 || !ratio(runs[i]!, runs[i + 1]!, runs[i + 2]!, runs[i + 3]!, runs[i + 4]!, u)) continue;
      const cx = Math.round(starts[i + 2]! + runs[i + 2]! / 2);
      if (!down(cx, y, u)) continue;
      if (!centres.some((c) => Math.abs(c.x - cx) < 7 * c.u && Math.abs(c.y - y) < 7 * c.u)) {
        centres.push({ x: cx, y, u });
        if (centres.length >= enough) return centres.length;
      }
    }
  }
  return centres.length;

  function ratio(a: number, b: number, c: number, d2: number, e: number, u: number): boolean {
    const near = (r: number, k: number) => Math.abs(r - k * u) <= u * (k === 3 ? 1.2 : 0.6);
    return near(a, 1) && near(b, 1) && near(c, 3) && near(d2, 1) && near(e, 1);
  }
  /** The same pattern down the column through (x, y), at the row's module size. */
  function down(x: number, y: number, u: number): boolean {
    if (!dark(x, y)) return false;
    const count = (dir: number, want: boolean, from: number): [number, number] => {
      let k = from;
      let c = 0;
      while (k >= 0 && k < h && dark(x, k) === want && c <= 5 * u) {
        c++;
        k += dir;
      }
      return [c, k];
    };
    const [up0, a] = count(-1, true, y);
    const [dn0, b] = count(1, true, y + 1);
    const [up1, a1] = count(-1, false, a);
    const [dn1, b1] = count(1, false, b);
    const [up2] = count(-1, true, a1);
    const [dn2] = count(1, true, b1);
    return ratio(up2, up1, up0 + dn0, dn1, dn2, (up2 + up1 + up0 + dn0 + dn1 + dn2) / 7);
  }
}

function grey(d: Uint8Array, p: number, channels: number): number {
  if (channels === 1) return d[p]!;
  const y = 0.299 * d[p]! + 0.587 * d[p + 1]! + 0.114 * d[p + 2]!;
  if (channels === 3) return y;
  const a = d[p + 3]! / 255;
  return y * a + 255 * (1 - a);
}
