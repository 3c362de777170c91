// Response data on the wire (RFC 3501 4): atoms and numbers as they are, strings quoted when
// they can be and sent as literals otherwise, NIL, parenthesised lists. One place, so no
// command handler can put a raw client string into a response unquoted.

export type ImapValue =
  | number
  | null
  | { readonly atom: string }
  | { readonly str: string | Buffer }
  | { readonly literal: Buffer }
  | readonly ImapValue[];

export const atom = (s: string): ImapValue => ({ atom: s });
export const str = (s: string | Buffer): ImapValue => ({ str: s });
export const nstr = (s: string | Buffer | null | undefined): ImapValue => (s === null || s === undefined ? null : { str: s });

/** A quoted string when safe (short, no CR/LF/NUL, ASCII or UTF-8 text), else a literal. */
export function quote(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  let safe = b.length <= 1024;
  if (safe) {
    for (const c of b) {
      if (c === 0 || c === 10 || c === 13 || c >= 0x80) {
        safe = false;
        break;
      }
    }
  }
  if (!safe) return Buffer.concat([Buffer.from(`{${b.length}}\r\n`), b]);
  return Buffer.from(`"${b.toString('latin1').replace(/[\\"]/g, (m) => `\\${m}`)}"`, 'latin1');
}

export function encodeValue(v: ImapValue, out: Buffer[]): void {
  if (v === null) out.push(NIL);
  else if (typeof v === 'number') out.push(Buffer.from(String(v)));
  else if (Array.isArray(v)) {
    out.push(OPEN);
    v.forEach((item, i) => {
      if (i > 0) out.push(SP);
      encodeValue(item, out);
    });
    out.push(CLOSE);
  } else if ('atom' in v) out.push(Buffer.from(v.atom, 'utf8'));
  else if ('literal' in v) out.push(Buffer.from(`{${v.literal.length}}\r\n`), v.literal);
  else out.push(quote((v as { str: string | Buffer }).str));
}

export function encodeList(items: readonly ImapValue[]): Buffer {
  const out: Buffer[] = [];
  encodeValue(items, out);
  return Buffer.concat(out);
}

const NIL = Buffer.from('NIL');
const OPEN = Buffer.from('(');
const CLOSE = Buffer.from(')');
const SP = Buffer.from(' ');
