// The console's one template helper: a tagged template that escapes every interpolated value,
// so a page cannot carry markup from a subject line, a file name or an address by accident.
// Only values made by this helper (or `trusted()`, used for the server's own SVG) pass through
// unescaped. Arrays are joined; undefined, null and false render as nothing.

const SAFE = Symbol('safe-html');

export interface SafeHtml {
  readonly [SAFE]: true;
  readonly text: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function isSafe(v: unknown): v is SafeHtml {
  return typeof v === 'object' && v !== null && (v as SafeHtml)[SAFE] === true;
}

/** Markup this code wrote itself (the SVG charts); never for anything that came from outside. */
export function trusted(text: string): SafeHtml {
  return { [SAFE]: true, text };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function render(v: unknown): string {
  if (v === undefined || v === null || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (isSafe(v)) return v.text;
  // Lone surrogates and C0 controls (other than tab and newlines) are shown as U+FFFD: they are
  // not valid in HTML and some are used to confuse parsers.
  return escapeHtml(String(v).replace(LONE_SURROGATE, '\ufffd').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd'));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return trusted(out);
}
