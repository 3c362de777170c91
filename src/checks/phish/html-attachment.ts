// HTML and SVG attachments that are phishing pages. Since mail filters learned to look at
// links, credential phishing ships the login page itself: an invoice.htm or a voicemail.svg that
// opens locally in the browser, asks for the password and posts it away, often hidden behind
// atob()/unescape() layers or a meta refresh to the real kit. No legitimate sender mails a login
// form as a file, so these findings weigh heavily (conf/scores.yaml); an HTML attachment without
// any of them (a saved web page, an HTML receipt) gets nothing.
//
// An inspector (src/mime/inspector.ts) so that it reads the walk's decoded part once, bounded,
// like the archive inspector; its symbols come out of the attachment check.
import type { Readable } from 'node:stream';
import { readBounded, type Inspector, type InspectorFinding, type PartInfo } from '../../mime/inspector.js';
import type { SymbolHit } from '../types.js';

/** Bytes of one attachment read at most: phishing pages are small; a large one is read from its start. */
const MAX_PAGE = 1 << 20;
/** Layers of base64 unwrapped (an atob() inside an atob()). */
const MAX_LAYERS = 3;

const HTML_NAME = /\.(?:s?html?|xhtml|hta|svgz?|mht(?:ml)?)$/i;
const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml', 'image/svg+xml', 'application/hta', 'message/rfc822-html']);

/** Attachment names of the usual lures: invoices, payments, voicemails, shared documents. */
const LURE_NAME = /\b(?:invoice|inv[-_ ]?\d|payment|remittance|remit|statement|receipt|purchase[-_ ]?order|p\.?o\.?[-_ #]?\d|quotation|voice ?mail|vm[-_ ]?\d|fax|e?-?fax|scan(?:ned)?|shared? (?:doc|file)|document|docusign|contract|agreement|wire|ach|swift|bank ?details|payroll|salary|bonus|secure ?message|encrypted ?message|password|account)/i;

export const HTML_ATTACHMENT_INSPECTOR = 'html-attachment';

export function htmlAttachmentInspector(): Inspector {
  return {
    name: HTML_ATTACHMENT_INSPECTOR,
    begin() {
      return {
        wants(part: PartInfo): boolean {
          if (!part.isAttachment) return false;
          return HTML_TYPES.has(part.contentType) || part.filenames.some((n) => HTML_NAME.test(n));
        },
        async inspect(part: PartInfo, _type: unknown, content: Readable): Promise<InspectorFinding> {
          const { buffer } = await readBounded(content, MAX_PAGE);
          const symbols = inspectPage(buffer.toString('latin1'), part.filename ?? '(no name)');
          return symbols.length ? { symbols } : {};
        },
      };
    },
  };
}

/** The findings for one HTML/SVG document (exported for tests). */
export function inspectPage(source: string, name: string): SymbolHit[] {
  const layers = unwrap(source);
  const all = layers.join('\n');
  const hits: SymbolHit[] = [];
  const where = `attachment ${JSON.stringify(name.slice(0, 80))}`;
  const password = /<input\b[^>]*\btype\s*=\s*["']?password/i.test(all);
  const form = /<form\b/i.test(all);
  const posts = /\b(?:fetch|XMLHttpRequest|\$\.(?:ajax|post)|navigator\.sendBeacon)\b|<form\b[^>]*\baction\s*=\s*["']?(?:https?:)?\/\//i.test(all);
  const credentialWords = /\b(?:password|passcode|sign[- ]?in|log[- ]?in|verify your|e-?mail address|account)\b/i.test(all);
  if (password || (form && posts && credentialWords)) {
    hits.push({ name: 'HTML_ATTACH_CREDENTIALS', reason: `${where} is a page asking for a ${password ? 'password' : 'login'}${posts ? ' and sending it away' : ''}` });
  }
  const obfuscated = layers.length > 1 || /\b(?:atob|unescape|eval|String\.fromCharCode|decodeURIComponent)\s*\(|document\.write\s*\(/i.test(source);
  const navigates = /\b(?:window\.|document\.|top\.)?location(?:\.href|\.replace|\.assign)?\s*(?:=|\()|<meta\b[^>]*http-equiv\s*=\s*["']?refresh/i.test(all);
  if (/<script\b|\bon(?:load|error|click|mouseover)\s*=/i.test(all) && obfuscated) {
    hits.push({ name: 'HTML_ATTACH_OBFUSCATED', reason: `${where} runs obfuscated script${layers.length > 1 ? ` (${layers.length - 1} layer(s) of base64 unwrapped)` : ''}` });
  }
  if (navigates && /(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i.test(all)) {
    hits.push({ name: 'HTML_ATTACH_REDIRECT', reason: `${where} sends the browser to another site when opened` });
  }
  if (/^\s*(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<svg\b/i.test(source) && /<script\b|<foreignObject\b|\bon(?:load|error|begin)\s*=|javascript:/i.test(all)) {
    hits.push({ name: 'SVG_ACTIVE_CONTENT', reason: `${where} is an SVG image with script or embedded HTML` });
  }
  if (hits.length && LURE_NAME.test(name)) hits.push({ name: 'ATTACH_LURE_NAME', reason: `${where} is named like an invoice, payment or shared document` });
  return hits;
}

/** The document, then what its base64 literals (atob("…"), data: URLs) decode to, a few layers deep. */
function unwrap(source: string): string[] {
  const layers = [source];
  let current = source;
  for (let i = 0; i < MAX_LAYERS; i++) {
    const found: string[] = [];
    const re = /(?:atob\s*\(\s*["'`]|data:[a-z/+.-]+;base64,)([A-Za-z0-9+/=\s]{40,})/g;
    for (let m = re.exec(current); m && found.length < 20; m = re.exec(current)) {
      const text = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('latin1');
      if (/[<>]|function|location|document/.test(text)) found.push(text);
    }
    if (!found.length) break;
    current = found.join('\n').slice(0, MAX_PAGE);
    layers.push(current);
  }
  return layers;
}
