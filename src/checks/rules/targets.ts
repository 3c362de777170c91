// What rules read, shaped the way SpamAssassin shapes it:
// - header: every field of that name, each value followed by "\n", joined; pseudo-headers ALL,
//   ToCc, MESSAGEID, EnvelopeFrom; modifiers :raw :addr :name :host :domain :ip :revip :first :last.
// - body: the subject line, then the rendered text of every text part, in paragraphs: blank lines separate
//   paragraphs, all other whitespace runs become one space, lines longer than 2,048 bytes are
//   split at a space (Message.pm get_rendered_body_text_array).
// - rawbody: each decoded text part (CRLF as LF) in pieces of 2–4 KiB split at "\n", ">" or " ".
// - full: the message as received; uri: each URI of the message.
// Texts are "binary" strings (one char per byte of UTF-8), as SpamAssassin matches bytes, and
// each is capped at maxBytes so that no rule sees more than that.
import type { ParsedMessage } from '../../mime/text.js';
import type { HeaderSpec } from './ruleset.js';
import { getDomain } from 'tldts';
import { decodeHeaderWords } from '../../mime/filenames.js';
import { relayHeaders, trustPath, type TrustConfig, type TrustPath } from './received.js';

/** Plain data sent to the matcher (possibly in a worker thread). */
export interface ScanInput {
  /** [name, raw (bytes as latin1), decoded value (Unicode)] in order. */
  readonly headers: readonly (readonly [string, string, string])[];
  readonly headerText: string;
  readonly envelopeFrom?: string;
  readonly subject: string;
  /** Rendered text of the body after the subject line. */
  readonly body: string;
  readonly rawParts: readonly string[];
  readonly full: string;
  readonly uris: readonly string[];
  /** trusted_networks / internal_networks for the Received trust path (X-Spam-Relays-*). */
  readonly trust?: TrustConfig;
}

export function scanInput(msg: ParsedMessage, uris: readonly string[], envelopeFrom?: string): ScanInput {
  return {
    headers: msg.headers.map((h) => [h.name, h.value, h.decoded] as const),
    headerText: msg.headerText,
    envelopeFrom,
    subject: msg.subject,
    // Every text part, both sides of a multipart/alternative included: SpamAssassin's body is
    // the rendering of every leaf text part (Message.pm get_body_text_array_common walks
    // find_parts(qr/./, 1)), not only the HTML side that ParsedMessage.bodyText keeps.
    body: msg.parts.map((p) => p.text).join('\n'),
    rawParts: msg.parts.map((p) => p.raw),
    full: msg.full,
    uris: [...uris],
  };
}

/** UTF-8 bytes of a string as a latin1 string (unchanged when pure ASCII). */
export function toBytes(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

const MAX_LINE = 2048;

function cap(s: string, maxBytes: number): string {
  return s.length > maxBytes ? s.slice(0, maxBytes) : s;
}

export class Targets {
  private readonly headerCache = new Map<string, string | undefined>();
  private readonly lowerCache = new Map<string, string>();
  private bodyLines?: string[];
  private rawLines?: string[];
  private fullText?: string;
  private uriList?: string[];
  private decodedFields?: { lname: string; raw: string; value: string; name: string }[];
  private relays?: TrustPath;

  constructor(private readonly input: ScanInput, private readonly maxBytes: number) {}

  private fields() {
    this.decodedFields ??= this.input.headers.map(([name, raw, value]) => ({
      name, lname: name.toLowerCase(), raw: cap(raw, this.maxBytes), value: cap(toBytes(value), this.maxBytes),
    }));
    return this.decodedFields;
  }

  /** The value a header rule matches, or undefined when absent (before [if-unset]). */
  header(spec: HeaderSpec): string | undefined {
    const key = `${spec.request}\0${spec.mods.join(':')}`;
    if (this.headerCache.has(key)) return this.headerCache.get(key);
    const v = this.computeHeader(spec);
    this.headerCache.set(key, v);
    return v;
  }

  private computeHeader(spec: HeaderSpec): string | undefined {
    const mods = new Set(spec.mods);
    const raw = mods.has('raw') || mods.has('addr') || mods.has('name');
    const fields = this.fields();
    const values = (lname: string) => fields.filter((f) => f.lname === lname).map((f) => `${raw ? f.raw : f.value}\n`);
    let results: string[];
    const req = spec.request;
    const relay = /^X-Spam-Relays-(Trusted|Untrusted|Internal|External)$/i.exec(req);
    if (relay) {
      // Metadata, not a field: one line without a trailing newline, "" when the list is empty.
      const key = `X-Spam-Relays-${relay[1]![0]!.toUpperCase()}${relay[1]!.slice(1).toLowerCase()}` as keyof ReturnType<typeof relayHeaders>;
      return cap(relayHeaders(this.trustPath())[key], this.maxBytes);
    }
    if (req === 'ALL' || req === 'ALL-UNTRUSTED' || req === 'ALL-EXTERNAL') {
      // Without a trust path every header counts as untrusted/external (see docs/rules.md).
      return cap(raw
        ? this.input.headerText.split(/\r?\n(?![ \t])/).map((l) => `${l}\n`).join('')
        : fields.map((f) => `${f.name}: ${f.value}\n`).join(''), this.maxBytes);
    } else if (req.toLowerCase() === 'envelopefrom') {
      results = this.input.envelopeFrom !== undefined ? [this.input.envelopeFrom] : values('return-path').slice(0, 1).map((v) => v.replace(/^\s*<?|>?\s*$/g, ''));
      results = results.filter((r) => r !== '');
    } else if (req.toLowerCase() === 'tocc') {
      results = [...values('to'), ...values('cc')];
    } else if (req === 'MESSAGEID') {
      results = ['x-message-id', 'resent-message-id', 'x-original-message-id', 'message-id'].flatMap(values).filter((v) => v !== '\n');
    } else {
      results = values(req.toLowerCase());
    }
    if (results.length === 0) return undefined;
    if (mods.has('first')) results = [results[0]!];
    else if (mods.has('last')) results = [results[results.length - 1]!];
    if (mods.has('addr') || mods.has('name')) {
      const out: string[] = [];
      for (const line of results) {
        for (const a of parseAddresses(line)) {
          if (mods.has('addr')) {
            if (a.address) out.push(a.address);
          } else if (a.phrase !== undefined) {
            // Like SpamAssassin, :name is decoded (RFC 2047) unless :raw is asked for too.
            out.push(mods.has('raw') ? a.phrase : toBytes(decodeHeaderWords(a.phrase).replace(/\s+/g, ' ').trim()));
          }
        }
      }
      results = out;
    }
    if (mods.has('host') || mods.has('domain')) {
      results = results.map((l) => hostOf(l, mods.has('domain'))).filter((h): h is string => !!h);
    } else if (mods.has('ip') || mods.has('revip')) {
      results = results.map((l) => /(?<![.\d])(\d{1,3}(?:\.\d{1,3}){3})(?![.\d])/.exec(l)?.[1]).filter((h): h is string => !!h)
        .map((ip) => (mods.has('revip') ? ip.split('.').reverse().join('.') : ip));
    }
    if (results.length === 0) return undefined;
    return cap(results.join(results[0]!.endsWith('\n') ? '' : '\n'), this.maxBytes);
  }

  /** The Received trust path, computed on first use (SpamAssassin's Received.pm). */
  trustPath(): TrustPath {
    this.relays ??= trustPath(
      this.input.headers.filter(([n]) => n.toLowerCase() === 'received').map(([, , v]) => v),
      this.input.trust,
      this.input.headers.map(([n, , v]) => [n, v] as const),
    );
    return this.relays;
  }

  private readonly literalCache = new Map<object, Uint8Array>();

  /** The literals of a set found in this message (computed once per set). */
  literalsFound(set: object, compute: () => Uint8Array): Uint8Array {
    let f = this.literalCache.get(set);
    if (f === undefined) {
      f = compute();
      this.literalCache.set(set, f);
    }
    return f;
  }

  /** Lower-case copy for the substring prefilter (cached per target). */
  lower(key: string, text: () => string): string {
    let l = this.lowerCache.get(key);
    if (l === undefined) {
      l = text().toLowerCase();
      this.lowerCache.set(key, l);
    }
    return l;
  }

  body(): string[] {
    if (this.bodyLines) return this.bodyLines;
    // Paragraphs: runs of blank lines separate them, other whitespace collapses (Perl's \s).
    const text = cap(toBytes(this.input.body), this.maxBytes)
      .replace(/\n+[\t\n\v\f\r ]*\n+/g, '\x00')
      .replace(/[\t\n\v\f\r ]+/g, ' ')
      .replace(/\x00/g, '\n');
    const subject = `${cap(toBytes(this.input.subject), MAX_LINE * 4)}\n`;
    this.bodyLines = [subject, ...shortLines(text)];
    return this.bodyLines;
  }

  rawbody(): string[] {
    if (this.rawLines) return this.rawLines;
    const out: string[] = [];
    let budget = this.maxBytes;
    for (const part of this.input.rawParts) {
      if (budget <= 0) break;
      // SpamAssassin turns CRLF into LF in everything but "full" (Message.pm).
      const text = cap(toBytes(part.includes('\r\n') ? part.replace(/\r\n/g, '\n') : part), budget);
      budget -= text.length;
      out.push(...shortParagraphs(text));
    }
    this.rawLines = out;
    return out;
  }

  full(): string {
    this.fullText ??= cap(this.input.full, this.maxBytes);
    return this.fullText;
  }

  uris(): string[] {
    this.uriList ??= this.input.uris.slice(0, 10_000).map((u) => cap(toBytes(u), 8192));
    return this.uriList;
  }
}

/** Message.pm split_into_array_of_short_lines: lines (with "\n"), long ones cut at a space. */
export function shortLines(text: string): string[] {
  const out: string[] = [];
  if (text === '') return out;
  for (let line of text.split(/(?<=\n)/)) {
    while (line.length > MAX_LINE) {
      const sp = line.lastIndexOf(' ', MAX_LINE);
      const len = sp + 1 || MAX_LINE;
      out.push(line.slice(0, len));
      line = line.slice(len);
    }
    out.push(line);
  }
  return out;
}

/** Message.pm split_into_array_of_short_paragraphs: 2–4 KiB pieces split at "\n", ">" or " ". */
export function shortParagraphs(text: string): string[] {
  if (text.length <= MAX_LINE) return [text];
  const out: string[] = [];
  let ofs = 0;
  for (; text.length - ofs > 2 * MAX_LINE;) {
    let j = text.indexOf('\n', ofs + MAX_LINE);
    if (j < 0 || j - ofs + 1 > 2 * MAX_LINE) {
      j = text.indexOf('>', ofs + MAX_LINE);
      if (j < 0 || j - ofs + 1 > 2 * MAX_LINE) {
        j = text.indexOf(' ', ofs + MAX_LINE);
        if (j < 0 || j - ofs + 1 > 2 * MAX_LINE) j = ofs + MAX_LINE;
      }
    }
    out.push(text.slice(ofs, j + 1));
    ofs = j + 1;
  }
  if (ofs < text.length) out.push(text.slice(ofs));
  return out;
}

/** Addresses and display names of an address header (RFC 5322, forgiving). */
export function parseAddresses(line: string): { address?: string; phrase?: string }[] {
  const out: { address?: string; phrase?: string }[] = [];
  // Split at commas outside quotes, angle brackets and comments.
  const items: string[] = [];
  let cur = '';
  let q = false, angle = 0, paren = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && q) { cur += c + (line[++i] ?? ''); continue; }
    if (c === '"' && !paren) q = !q;
    else if (!q && c === '(') paren++;
    else if (!q && c === ')' && paren) paren--;
    else if (!q && !paren && c === '<') angle++;
    else if (!q && !paren && c === '>' && angle) angle--;
    if (c === ',' && !q && !angle && !paren) {
      items.push(cur);
      cur = '';
    } else cur += c;
  }
  items.push(cur);
  for (let item of items) {
    item = item.replace(/^[^:"<]*:(?![^<]*>)/, (g) => (/@/.test(g) ? g : '')).trim(); // group "name:" prefix
    if (!item || item === ';') continue;
    const angleM = /^(.*?)<([^<>]*)>/.exec(item);
    if (angleM) {
      let phrase = angleM[1]!.trim().replace(/^"(.*)"$/, '$1').replace(/\\(.)/g, '$1');
      if (!phrase) {
        const comment = /\(([^()]*)\)/.exec(item.slice(angleM[0].length));
        phrase = comment?.[1]?.trim() ?? '';
      }
      out.push({ address: angleM[2]!.trim(), phrase: phrase || undefined });
      continue;
    }
    const comment = /\(([^()]*)\)/.exec(item);
    const addr = item.replace(/\([^()]*\)/g, '').trim();
    out.push({ address: addr || undefined, phrase: comment?.[1]?.trim() || undefined });
  }
  return out;
}

function hostOf(line: string, domainOnly: boolean): string | undefined {
  const at = /@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/.exec(line);
  const host = at?.[1] ?? /(?<![._-])([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})(?![._-])/.exec(line)?.[1];
  if (!host) return undefined;
  return domainOnly ? getDomain(host) ?? host : host;
}
