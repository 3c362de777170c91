// HTML → the text a reader sees, plus the links and the facts content rules look at (images,
// text hidden from the reader). One htmlparser2 pass (a fast, forgiving tokenizer that copes
// with the broken HTML spam is made of); the rendering itself is ours because what matters
// here differs from a display renderer: hidden text is set aside (spammers hide word salad
// for Bayes poisoning), anchor text is kept with its href for the phishing check, and
// script/style never reach the text.
import { Parser } from 'htmlparser2';

export interface Link {
  /** 'a' | 'img' | 'area' | 'form' | 'iframe' | 'base' | 'link' | … */
  readonly tag: string;
  /** 'href' | 'src' | 'action' | 'background' */
  readonly attr: string;
  /** Attribute value, entities decoded, not resolved against <base>. */
  readonly url: string;
  /** Rendered anchor text ('' for anything but <a> and <area alt>). */
  readonly text: string;
}

export interface RenderedHtml {
  readonly text: string;
  readonly links: Link[];
  readonly images: number;
  /** Characters of text hidden from the reader (display:none, zero/tiny font, invisible colour). */
  readonly invisibleChars: number;
}

const BLOCK = new Set([
  'p', 'div', 'br', 'tr', 'li', 'ul', 'ol', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote',
  'pre', 'hr', 'dd', 'dt', 'dl', 'section', 'article', 'header', 'footer', 'title', 'center', 'form', 'address',
]);
const SKIP = new Set(['script', 'style', 'head', 'noscript', 'template', 'object', 'applet']);
const VOID = new Set(['br', 'hr', 'img', 'input', 'meta', 'link', 'base', 'area', 'col', 'embed', 'param', 'source', 'track', 'wbr']);
const URL_ATTRS: Record<string, string[]> = {
  a: ['href'], area: ['href'], link: ['href'], base: ['href'], img: ['src'], iframe: ['src'], frame: ['src'],
  form: ['action'], embed: ['src'], script: ['src'], input: ['src'], body: ['background'], table: ['background'], td: ['background'],
};
/** Most links, images and text a message may add; beyond, the rest is ignored (spam is not longer). */
const MAX_LINKS = 2000;
const MAX_STACK = 256;

function hides(attrs: Record<string, string>): boolean {
  const style = (attrs.style ?? '').toLowerCase().replace(/\s+/g, '');
  if (style) {
    if (/display:none|visibility:hidden|font-size:[01](\.\d+)?(px|pt|em)?(;|$)|opacity:0(\.0+)?(;|$)/.test(style)) return true;
    if (/(^|;)color:(#fff(fff)?|white)(;|$)/.test(style) && !/background/.test(style)) return true;
  }
  if (attrs.hidden !== undefined) return true;
  const color = (attrs.color ?? '').toLowerCase();
  if (color === '#ffffff' || color === '#fff' || color === 'white') return true;
  const size = attrs.size;
  return size !== undefined && /^\s*[-]?[0-1]\s*$/.test(size) && Number(size) <= 0;
}

/** Renders HTML (already charset-decoded) within `maxChars` of output. Never throws. */
export function renderHtml(html: string, maxChars = 1 << 20): RenderedHtml {
  const out: string[] = [];
  let outLen = 0;
  const links: Link[] = [];
  let images = 0;
  let invisibleChars = 0;
  // Per open element: does it hide, does it skip (script/style)?
  const stack: { name: string; hidden: boolean; skip: boolean }[] = [];
  let hiddenDepth = 0;
  let skipDepth = 0;
  // The <a> being read: its href and the text collected so far.
  let anchor: { url: string; text: string[] } | undefined;

  const push = (s: string) => {
    if (outLen >= maxChars) return;
    out.push(s);
    outLen += s.length;
  };
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        const hidden = hides(attrs);
        const skip = SKIP.has(name);
        for (const attr of URL_ATTRS[name] ?? []) {
          const value = attrs[attr];
          if (value !== undefined && value.trim() !== '' && links.length < MAX_LINKS) {
            if (name === 'a') anchor = { url: value.trim(), text: [] };
            else links.push({ tag: name, attr, url: value.trim(), text: name === 'area' ? (attrs.alt ?? '') : '' });
          }
        }
        if (name === 'img') {
          images++;
          const alt = attrs.alt?.trim();
          if (alt && !hiddenDepth && !skipDepth) push(` ${alt} `);
        }
        if (BLOCK.has(name)) push('\n');
        if (VOID.has(name)) return;
        if (stack.length >= MAX_STACK) return;
        stack.push({ name, hidden, skip });
        if (hidden) hiddenDepth++;
        if (skip) skipDepth++;
      },
      ontext(text) {
        if (skipDepth) return;
        if (hiddenDepth) {
          invisibleChars += text.replace(/\s+/g, '').length;
          return;
        }
        push(text);
        if (anchor && anchor.text.length < 64) anchor.text.push(text);
      },
      onclosetag(name) {
        if (name === 'a' && anchor) {
          links.push({ tag: 'a', attr: 'href', url: anchor.url, text: anchor.text.join('').replace(/\s+/g, ' ').trim() });
          anchor = undefined;
        }
        if (BLOCK.has(name)) push('\n');
        if (VOID.has(name)) return;
        // Close up to the matching element (browsers forgive missing end tags; so do we).
        for (let i = stack.length - 1; i >= 0; i--) {
          if (stack[i].name !== name) continue;
          while (stack.length > i) {
            const el = stack.pop()!;
            if (el.hidden) hiddenDepth--;
            if (el.skip) skipDepth--;
          }
          break;
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  try {
    parser.write(html);
    parser.end();
  } catch {
    // htmlparser2 does not throw on bad HTML; this only guards a callback bug from taking the
    // scan down. What was rendered so far stands.
  }
  if (anchor) links.push({ tag: 'a', attr: 'href', url: anchor.url, text: anchor.text.join('').replace(/\s+/g, ' ').trim() });
  return { text: collapse(out.join('')), links, images, invisibleChars };
}

/** Runs of spaces → one space, runs of blank lines → one blank line, lines trimmed. */
export function collapse(text: string): string {
  return text
    .replace(/[\t\f\v \u00a0\u200b\u200c\u200d\ufeff]+/g, ' ')
    .replace(/ ?\r?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
