// From oversigning (RFC 6376 8.15; what OpenDKIM and rspamd do): the signature's h= names From
// once more than the message has From fields, so that a From added in transit (a second author
// shown to the reader) breaks the signature. mailauth's signer lists each field once per
// instance present and ignores a name listed twice (mailauth 4.13 getSigningHeaderLines), so it
// cannot do this; this module re-signs mailauth's signature with the longer h= list. The body
// hash (bh=) and every other tag stay mailauth's: only h= and b= change.
//
// Header hash (RFC 6376 3.7, 5.4.2): each name of h= in order takes the next unused instance of
// that field from the bottom of the header; a name with no instance left adds nothing (that is
// the oversigning); then the DKIM-Signature field itself with an empty b=, without its CRLF.
// Relaxed canonicalization (3.4.2). RSA is RSASSA-PKCS1-v1_5 with SHA-256; Ed25519 (RFC 8463)
// signs the SHA-256 digest of the same data.
import crypto from 'node:crypto';
import { parseHeaderBlock } from '../../protocol/headers.js';
import type { DkimKey } from './keys.js';

/** Relaxed header canonicalization of one field: "name:value" + CRLF. */
export function relaxedHeader(name: string, value: string): string {
  const v = value.replace(/\r\n(?=[ \t])/g, '').replace(/[ \t]+/g, ' ').replace(/ $/, '').replace(/^ /, '');
  return `${name.toLowerCase().trimEnd()}:${v}\r\n`;
}

interface Tag {
  readonly name: string;
  value: string;
}

function parseTags(value: string): Tag[] {
  return value.split(';').map((t) => t.trim()).filter(Boolean).map((t) => {
    const eq = t.indexOf('=');
    return { name: t.slice(0, eq).trim(), value: t.slice(eq + 1).replace(/\s+/g, '') };
  });
}

/** The field's tags, folded at tag boundaries and inside h= and b= (where FWS is allowed). */
function fold(tags: readonly Tag[]): string {
  const lines: string[] = [];
  let line = 'DKIM-Signature:';
  const put = (piece: string, joiner: string) => {
    if (line.length + joiner.length + piece.length > 76 && line.trim() !== 'DKIM-Signature:') {
      lines.push(line);
      line = `\t${piece}`;
    } else line += joiner + piece;
  };
  for (const [k, t] of tags.entries()) {
    const sep = k === tags.length - 1 ? '' : ';';
    if (t.name === 'h') {
      const names = t.value.split(':');
      names.forEach((n, j) => put(`${j === 0 ? 'h=' : ''}${n}${j === names.length - 1 ? sep : ':'}`, j === 0 ? ' ' : ''));
    } else if (t.name === 'b' && t.value) {
      const chunks = t.value.match(/.{1,64}/g) ?? [''];
      chunks.forEach((c, j) => put(`${j === 0 ? 'b=' : ''}${c}${j === chunks.length - 1 ? sep : ''}`, j === 0 ? ' ' : ''));
    } else put(`${t.name}=${t.value}${sep}`, ' ');
  }
  lines.push(line);
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * mailauth's DKIM-Signature fields (CRLF-terminated, as dkimSign returns them) re-signed with
 * From listed once more than the message's From fields. `head`: the message's header section.
 */
export function oversignFrom(signatures: string, head: Buffer, keys: readonly DkimKey[]): string {
  const end = head.indexOf('\r\n\r\n');
  const fields = parseHeaderBlock(end >= 0 ? head.subarray(0, end + 2) : head);
  const fromCount = fields.filter((f) => f.key === 'from').length;
  const out: string[] = [];
  for (const field of signatures.split(/\r\n(?![ \t])/).filter(Boolean)) {
    const colon = field.indexOf(':');
    const tags = parseTags(field.slice(colon + 1).replace(/\r\n[ \t]/g, ' '));
    const get = (n: string) => tags.find((t) => t.name === n);
    const h = get('h');
    const key = keys.find((k) => k.domain === get('d')?.value.toLowerCase() && k.selector === get('s')?.value);
    if (!h || !get('b') || !key) throw new Error(`cannot oversign a DKIM-Signature without h=, b= or a known key (d=${get('d')?.value}, s=${get('s')?.value})`);
    const names = h.value.split(':').map((n) => n.trim().toLowerCase()).filter(Boolean);
    const listed = names.filter((n) => n === 'from').length;
    for (let i = listed; i <= fromCount; i++) names.push('from');
    h.value = names.join(':');
    get('b')!.value = '';
    // The header hash input: the listed fields, bottom-up per name, then this field with b= empty.
    const used = new Map<string, number>();
    let data = '';
    for (const n of names) {
      const instances = fields.filter((f) => f.key === n);
      const k = (used.get(n) ?? 0) + 1;
      used.set(n, k);
      const f = instances[instances.length - k];
      if (f) data += relaxedHeader(f.name, f.raw.toString('latin1').slice(f.raw.indexOf(':') + 1).replace(/\r\n$/, ''));
    }
    const unsigned = fold(tags);
    data += relaxedHeader('DKIM-Signature', unsigned.slice(unsigned.indexOf(':') + 1).replace(/\r\n$/, '')).replace(/\r\n$/, '');
    const bytes = Buffer.from(data, 'latin1');
    const b = key.type === 'rsa'
      ? crypto.sign('sha256', bytes, key.privateKeyPem)
      : crypto.sign(null, crypto.createHash('sha256').update(bytes).digest(), key.privateKeyPem);
    get('b')!.value = b.toString('base64');
    out.push(fold(tags));
  }
  return out.join('');
}
