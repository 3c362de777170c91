// The message header section: split into fields for checks and logging. Bounded: the caller
// hands over at most the configured header limit.

export interface HeaderField {
  /** Field name as written. */
  readonly name: string;
  /** Lower-case name for lookups. */
  readonly key: string;
  /** Unfolded value, leading whitespace trimmed, latin1 decoded (bytes kept 1:1). */
  readonly value: string;
  /** The raw field, folded lines and final CRLF included. */
  readonly raw: Buffer;
}

/**
 * The same field as the text facet of the message model reads it (src/mime/text.ts, for rules,
 * Bayes and URIs): `value` unfolded with each fold as one space and 8-bit UTF-8 read as such,
 * `decoded` with RFC 2047 encoded-words decoded too. No raw bytes: that facet works on a capped
 * text copy of the message.
 */
export interface DecodedHeaderField extends Omit<HeaderField, 'raw'> {
  readonly decoded: string;
}

/** Parses a header block (everything before the empty line, CRLF line endings). */
export function parseHeaderBlock(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  const n = block.length;
  let pos = 0;
  while (pos < n) {
    let eol = block.indexOf('\r\n', pos);
    if (eol < 0) eol = n;
    const next = eol + 2;
    // A continuation line starts with SP or HTAB.
    if (next < n && (block[next] === 0x20 || block[next] === 0x09)) {
      pos = next;
      continue;
    }
    const raw = block.subarray(start, Math.min(next, n));
    const text = raw.toString('latin1');
    const colon = text.indexOf(':');
    if (colon > 0 && /^[\x21-\x39\x3b-\x7e]+$/.test(text.slice(0, colon).trimEnd())) {
      const name = text.slice(0, colon).trimEnd();
      fields.push({ name, key: name.toLowerCase(), value: text.slice(colon + 1).replace(/\r\n([ \t])/g, '$1').trim(), raw });
    }
    start = pos = next;
  }
  return fields;
}

export function headerValue(fields: readonly HeaderField[], key: string): string | undefined {
  return fields.find((f) => f.key === key)?.value;
}
