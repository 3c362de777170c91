// Content-Transfer-Encoding decoders that work chunk by chunk, keep a few bytes of state and
// note what is wrong with their input instead of throwing: invalid characters, data after the
// padding, a truncated last group (a cut-off message), a broken "=XX" escape.

export interface Decoder {
  /** Decodes the next chunk (any split, even mid-group). */
  write(chunk: Buffer): Buffer;
  /** Ends the content: returns what is left and the problems seen, if any. */
  end(): Buffer;
  /** Problems seen so far, for humans ("truncated base64 (3 characters left over)"). */
  readonly problems: readonly string[];
}

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));

export class Base64Decoder implements Decoder {
  private quad = 0;
  private have = 0;
  private padded = false;
  private invalid = 0;
  private afterPad = 0;
  readonly problems: string[] = [];

  write(chunk: Buffer): Buffer {
    // Fast path for the usual case (alphabet and line breaks only, no padding yet): let Node
    // decode whole groups; the byte loop below handles the edges and everything unusual.
    if (!this.padded && chunk.length > 64) {
      const text = chunk.toString('latin1');
      if (!/[^A-Za-z0-9+/\r\n]/.test(text)) {
        const clean = text.replace(/[\r\n]+/g, '');
        const lead = (4 - this.have) % 4;
        if (clean.length >= lead + 4) {
          const head = this.slow(Buffer.from(clean.slice(0, lead), 'latin1'));
          const whole = clean.length - ((clean.length - lead) % 4);
          const body = Buffer.from(clean.slice(lead, whole), 'base64');
          const tail = this.slow(Buffer.from(clean.slice(whole), 'latin1'));
          return head.length || tail.length ? Buffer.concat([head, body, tail]) : body;
        }
      }
    }
    return this.slow(chunk);
  }

  private slow(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(Math.ceil((chunk.length * 3) / 4) + 3);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      const v = B64[c]!;
      if (v < 0) {
        // "=" is padding and ends the data; line breaks and blanks are ignored (RFC 2045 s6.8).
        if (c === 0x3d) this.padded = true;
        else if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09) this.invalid++;
        continue;
      }
      if (this.padded) {
        // Data after padding: concatenated base64 (some mailers do it); decoders differ, so say so.
        this.afterPad++;
        o = this.partial(out, o);
        this.padded = false;
      }
      this.quad = (this.quad << 6) | v;
      if (++this.have === 4) {
        out[o++] = (this.quad >> 16) & 0xff;
        out[o++] = (this.quad >> 8) & 0xff;
        out[o++] = this.quad & 0xff;
        this.quad = 0;
        this.have = 0;
      }
    }
    return out.subarray(0, o);
  }

  /** Writes out a partial last group ("xx==" gives one byte, "xxx=" two) at `o`; returns the new end. */
  private partial(out: Buffer, o: number): number {
    if (this.have === 2) out[o++] = (this.quad >> 4) & 0xff;
    else if (this.have === 3) {
      out[o++] = (this.quad >> 10) & 0xff;
      out[o++] = (this.quad >> 2) & 0xff;
    }
    this.quad = 0;
    this.have = 0;
    return o;
  }

  end(): Buffer {
    const out = Buffer.alloc(3);
    const left = this.have;
    const n = this.partial(out, 0);
    if (left === 1) this.problems.push('truncated base64 (a lone character in the last group)');
    else if (left > 1 && !this.padded) this.problems.push(`truncated base64 (last group of ${left} characters, no padding)`);
    if (this.invalid) this.problems.push(`${this.invalid} invalid character(s) in base64`);
    if (this.afterPad) this.problems.push('base64 data after padding');
    return out.subarray(0, n);
  }
}

const HEX = new Int8Array(256).fill(-1);
'0123456789ABCDEF'.split('').forEach((c, i) => (HEX[c.charCodeAt(0)] = i));
'abcdef'.split('').forEach((c, i) => (HEX[c.charCodeAt(0)] = 10 + i));

export class QuotedPrintableDecoder implements Decoder {
  /** Bytes held back: an "=" and what followed it, at a chunk end. */
  private held = Buffer.alloc(0);
  private bad = 0;
  readonly problems: string[] = [];

  write(chunk: Buffer): Buffer {
    const input = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    const out = Buffer.allocUnsafe(input.length);
    let o = 0;
    const n = input.length;
    for (let i = 0; i < n; i++) {
      const c = input[i]!;
      if (c !== 0x3d) {
        out[o++] = c;
        continue;
      }
      // "=" then two hex digits, or a soft line break ("=" then optional blanks then CRLF/LF).
      let j = i + 1;
      while (j < n && (input[j] === 0x20 || input[j] === 0x09)) j++;
      if (j === n && n - i < 80) {
        this.held = Buffer.from(input.subarray(i));
        break;
      }
      if (input[j] === 0x0d && j + 1 === n) {
        this.held = Buffer.from(input.subarray(i));
        break;
      }
      if (input[j] === 0x0a) {
        i = j;
        continue;
      }
      if (input[j] === 0x0d && input[j + 1] === 0x0a) {
        i = j + 1;
        continue;
      }
      if (i + 2 >= n) {
        this.held = Buffer.from(input.subarray(i));
        break;
      }
      const h = HEX[input[i + 1]!]!;
      const l = HEX[input[i + 2]!]!;
      if (h < 0 || l < 0) {
        // Keep the "=" as is, like most decoders.
        this.bad++;
        out[o++] = c;
        continue;
      }
      out[o++] = (h << 4) | l;
      i += 2;
    }
    return out.subarray(0, o);
  }

  end(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    // A trailing "=" (soft break at the very end) is fine; anything else left is a broken escape.
    if (rest.length && !/^=[ \t]*\r?$/.test(rest.toString('latin1'))) this.bad++;
    if (this.bad) this.problems.push(`${this.bad} broken quoted-printable escape(s)`);
    return /^=[ \t]*\r?$/.test(rest.toString('latin1')) ? Buffer.alloc(0) : rest;
  }
}

export class IdentityDecoder implements Decoder {
  readonly problems: string[] = [];
  write(chunk: Buffer): Buffer {
    return chunk;
  }
  end(): Buffer {
    return Buffer.alloc(0);
  }
}

/** The decoder for a Content-Transfer-Encoding value; unknown encodings pass bytes through. */
export function decoderFor(encoding: string): { decoder: Decoder; known: boolean } {
  switch (encoding) {
    case 'base64': return { decoder: new Base64Decoder(), known: true };
    case 'quoted-printable': return { decoder: new QuotedPrintableDecoder(), known: true };
    case '': case '7bit': case '8bit': case 'binary': return { decoder: new IdentityDecoder(), known: true };
    default: return { decoder: new IdentityDecoder(), known: false };
  }
}
