// QR codes in images and PDFs ("quishing"): the phishing link travels as the pixels of a QR code
// in an attached or inline image, or in an image inside a PDF, so that no link filter sees it and
// the victim opens it on a phone, outside the company's protection. This inspector decodes the
// images a message carries (qr-image.ts, qr-pdf.ts) and reports a QR code that encodes a web
// link, with the link's own warning signs: an IP address as host, a look-alike of our domains or
// a brand's (the targets of the impersonation check), a URL shortener, an abused top-level
// domain, the recipient's address in the link.
//
// Bounded so that ordinary mail, full of logos and photos, costs little: parts are read up to
// MAX_PART bytes, at most MAX_IMAGES images a message are searched, within a time budget, and
// an image is refused from its header when its size rules a QR code out (qr-image.ts).
import net from 'node:net';
import type { Readable } from 'node:stream';
import { getDomain } from 'tldts';
import { readBounded, type Inspector, type InspectorFinding, type MessageStart, type PartInfo } from '../../mime/inspector.js';
import type { FileType } from '../../mime/filetype.js';
import type { SymbolHit } from '../types.js';
import { BUILTIN_SHORTENERS } from '../uri/heuristics.js';
import { isAtOrUnder } from '../uri/host.js';
import { BUILTIN_BRANDS, type Brand } from './brands.js';
import { compileBrands, lookalike, lookalikeTargets } from './impersonation.js';
import { qrInImage, rasterKind, type QrResult } from './qr-image.js';
import { qrInPdf } from './qr-pdf.js';

export const QR_INSPECTOR = 'qr';

/** Bytes of one image or PDF read at most: QR images are small, and a PDF's first image comes early. */
export const MAX_PART = 4 << 20;
/** Images searched per message at most (a PDF's images count too). */
export const MAX_IMAGES = 5;
/** Milliseconds of decoding per message, after which no further image is started. */
export const TIME_BUDGET_MS = 150;
/** Characters of a link shown in a reason. */
const SHOWN = 100;

const IMAGE_TYPES = new Set(['image/png', 'image/x-png', 'image/jpeg', 'image/jpg', 'image/pjpeg', 'image/gif']);
const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf']);

/**
 * The top-level domains of the rule URI_RISKY_TLD (conf/rules/40_uri.cf), which the rule engine
 * applies to the message's links but never sees a QR code's; qr.test.ts keeps the two lists equal.
 */
export const RISKY_TLDS: readonly string[] = [
  'xyz', 'top', 'click', 'loan', 'work', 'gq', 'tk', 'ml', 'cf', 'ga', 'buzz', 'rest', 'cam', 'icu', 'monster', 'zip', 'mov', 'country',
  'kim', 'science', 'party', 'review', 'stream', 'download', 'racing', 'win', 'bid', 'date', 'faith', 'trade', 'webcam', 'accountant',
  'cricket', 'sbs', 'cfd', 'bond', 'cyou', 'quest', 'lol', 'autos', 'boats', 'hair', 'skin', 'makeup', 'beauty', 'mom', 'homes', 'pics',
  'men', 'gdn',
];

export interface QrInspectorOptions {
  /** Our domains (config.domains and relay domains): a QR link imitating one is suspicious. */
  readonly ownDomains: readonly string[];
  /** Brands beyond the built-in list (phishing.brands). */
  readonly brands?: readonly Brand[];
  /** Use the built-in brand list (phishing.builtin_brands). */
  readonly builtinBrands?: boolean;
  /** URL shorteners beyond the built-in ones (uri.shorteners). */
  readonly shorteners?: readonly string[];
  /** Decoding time per message (tests); TIME_BUDGET_MS by default. */
  readonly budgetMs?: number;
}

/**
 * The recipients (To, Cc, from the walk's message start) tell the recipient's address from any
 * other; without them any address in a QR link counts, since a QR code that carries an e-mail
 * address is made per victim.
 */
type Start = MessageStart;

export function qrInspector(options: QrInspectorOptions): Inspector {
  const own = options.ownDomains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  const brands = compileBrands([...(options.builtinBrands === false ? [] : BUILTIN_BRANDS), ...(options.brands ?? [])]);
  const judge: LinkJudge = {
    targets: lookalikeTargets(own, brands),
    shorteners: [...new Set([...BUILTIN_SHORTENERS, ...(options.shorteners ?? [])])],
  };
  const budget = options.budgetMs ?? TIME_BUDGET_MS;
  return {
    name: QR_INSPECTOR,
    begin(message: Start) {
      const recipients = (message.recipients ?? []).map((a) => a.toLowerCase());
      let searched = 0;
      let spent = 0;
      const reported = new Set<string>();
      const exhausted = () => searched >= MAX_IMAGES || spent >= budget;
      return {
        wants(part: PartInfo, type: FileType): boolean {
          if (exhausted()) return false;
          return isImage(part, type) || PDF_TYPES.has(part.contentType) || type.kind === 'pdf';
        },
        async inspect(part: PartInfo, type: FileType, content: Readable, ctx): Promise<InspectorFinding> {
          const { buffer } = await readBounded(content, MAX_PART);
          if (exhausted() || ctx.signal.aborted) return {};
          const started = performance.now();
          let results: QrResult[];
          if (rasterKind(buffer)) {
            searched++;
            results = [await qrInImage(buffer)];
          } else if (buffer.subarray(0, 1024).includes('%PDF-')) {
            results = await qrInPdf(buffer, MAX_IMAGES - searched, () => performance.now() - started + spent >= budget || ctx.signal.aborted);
            searched += results.filter((r) => !('refused' in r)).length;
          } else {
            results = [];
          }
          spent += performance.now() - started;
          const where = describe(part, type);
          const hits: SymbolHit[] = [];
          for (const r of results) {
            if (!('found' in r)) continue;
            for (const h of judgeLink(r.found, where, judge, recipients)) {
              if (!reported.has(h.name)) hits.push(h);
              reported.add(h.name);
            }
          }
          return hits.length ? { symbols: hits } : {};
        },
      };
    },
  };
}

interface LinkJudge {
  readonly targets: ReadonlyMap<string, string>;
  readonly shorteners: readonly string[];
}

function isImage(part: PartInfo, type: FileType): boolean {
  return IMAGE_TYPES.has(part.contentType) || type.kind === 'png' || type.kind === 'jpeg' || type.kind === 'gif';
}

function describe(part: PartInfo, type: FileType): string {
  const what = type.kind === 'pdf' || PDF_TYPES.has(part.contentType) ? 'PDF' : 'image';
  return part.filename ? `${what} ${JSON.stringify(part.filename.slice(0, 80))}` : `${part.isAttachment ? '' : 'inline '}${what} (part ${part.path})`;
}

/** The symbols for the text a QR code decoded to, found in `where` (exported for tests). */
export function judgeLink(text: string, where: string, judge: LinkJudge, recipients: readonly string[]): SymbolHit[] {
  const url = webLink(text);
  if (!url) return [];
  const shown = url.length > SHOWN ? `${url.slice(0, SHOWN - 3)}...` : url;
  const hits: SymbolHit[] = [{ name: 'QR_CODE_LINK', reason: `a QR code in the ${where} links to ${shown}` }];
  const host = hostOf(url);
  if (host) {
    const why = suspicious(host, judge);
    if (why) hits.push({ name: 'QR_CODE_SUSPICIOUS_LINK', reason: `the QR code's link ${why}` });
  }
  const address = addressIn(url, recipients);
  if (address) hits.push({ name: 'QR_CODE_RECIPIENT', reason: `the QR code's link to ${host ?? 'a site'} carries ${recipients.length ? "the recipient's" : 'an e-mail'} address` });
  return hits;
}

/** The web link a QR code's text holds: an http(s) URL, or one written from "www.". */
function webLink(text: string): string | undefined {
  const m = /\b(?:https?:\/\/|www\.)[^\s<>"]+/i.exec(text.trim());
  if (!m) return undefined;
  return /^www\./i.test(m[0]) ? `http://${m[0]}` : m[0];
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '') || undefined;
  } catch {
    return undefined;
  }
}

/** Why a QR link's host is suspicious, or undefined. */
function suspicious(host: string, judge: LinkJudge): string | undefined {
  // new URL() already reads decimal, hex and octal IPv4 forms as dotted quads.
  if (net.isIP(host)) return `goes to the IP address ${host}`;
  const short = judge.shorteners.find((s) => isAtOrUnder(host, s));
  if (short) return `goes through the URL shortener ${short}`;
  const reg = getDomain(host);
  const imitated = reg ? lookalike(reg, judge.targets) : undefined;
  if (imitated) return `goes to ${reg}, which imitates ${imitated}`;
  const tld = host.slice(host.lastIndexOf('.') + 1);
  if (RISKY_TLDS.includes(tld)) return `goes to ${host}, under the abused top-level domain .${tld}`;
  return undefined;
}

/**
 * An e-mail address the link carries (the recipient's, when recipients are known): plainly,
 * URL-encoded, or base64-encoded in a path segment, query value or the fragment.
 */
function addressIn(url: string, recipients: readonly string[]): string | undefined {
  const forms = [url];
  try {
    forms.push(decodeURIComponent(url));
  } catch {
    // A malformed escape: the plain form is still searched.
  }
  const rest = url.replace(/^[a-z]+:\/\/[^/?#]*/i, '');
  for (const token of rest.match(/[A-Za-z0-9+/_-]{12,}={0,2}/g)?.slice(0, 20) ?? []) {
    forms.push(Buffer.from(token.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1'));
  }
  const re = /[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/gi;
  for (const f of forms) {
    // The part after the host only: "user@host" userinfo is another trick, not an address.
    const tail = f === url || f === forms[1] ? f.replace(/^[a-z]+:\/\/[^/?#]*/i, '') : f;
    for (const m of tail.match(re) ?? []) {
      const a = m.toLowerCase();
      if (!recipients.length || recipients.includes(a)) return a;
    }
  }
  return undefined;
}
