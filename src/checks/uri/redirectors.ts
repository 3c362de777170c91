// Redirectors: a link through google.com/url?q=… or a safelinks wrapper goes where its
// parameter says, so the target is listed beside the redirector (SpamAssassin's
// redirector_pattern plus its generic rule: any "https?://" in the rest of the URL).
import { hostInfo, isAtOrUnder } from './host.js';

export interface Redirector {
  /**
   * "example.com" (that host and its subdomains), "*.example.com" (the same), or "google.*"
   * (any registrable domain whose label left of the public suffix is "google": google.de,
   * google.co.uk).
   */
  readonly host: string;
  /** Path prefix, e.g. "/url"; any path when absent. */
  readonly path?: string;
  /** The query parameter carrying the target. */
  readonly param: string;
}

/** Well-known open or tracking redirectors whose target may lack a scheme or be encoded once more. */
export const BUILTIN_REDIRECTORS: readonly Redirector[] = [
  { host: 'google.*', path: '/url', param: 'q' },
  { host: 'google.*', path: '/url', param: 'url' },
  { host: 'google.*', path: '/translate', param: 'u' },
  { host: 'google.*', path: '/pagead/iclk', param: 'adurl' },
  { host: 'facebook.com', path: '/l.php', param: 'u' },
  { host: 'youtube.com', path: '/redirect', param: 'q' },
  { host: 'safelinks.protection.outlook.com', param: 'url' },
  { host: 'linkedin.com', path: '/redir/redirect', param: 'url' },
  { host: 'slack-redir.net', path: '/link', param: 'url' },
  { host: 't.umblr.com', path: '/redirect', param: 'z' },
  { host: 'aol.com', path: '/redir.adp', param: '_url' },
];

/** A redirector matches the URL's host (ASCII) and path. */
export function matchesRedirector(r: Redirector, url: URL): boolean {
  return matchesHost(r, url.hostname.replace(/\.$/, '')) && matchesPath(r, url.pathname.toLowerCase());
}

function matchesHost(r: Redirector, host: string): boolean {
  const pattern = r.host.toLowerCase().replace(/^\*\./, '');
  if (pattern.endsWith('.*')) {
    const info = hostInfo(host);
    return !!info && info.orgLabel === pattern.slice(0, -2);
  }
  return isAtOrUnder(host, pattern);
}

function matchesPath(r: Redirector, lowerPath: string): boolean {
  return r.path === undefined || lowerPath.startsWith(r.path.toLowerCase());
}

const SCHEME_TARGET = /^(?:https?|ftp):[/\\]{0,2}[^\s&#]*\.[^\s&#]*/i;

/**
 * The URLs a URL redirects to (at most a few): the configured redirector's parameter (a value
 * without a scheme gets http://), then any query value or path segment that is itself an
 * http(s) URL — SpamAssassin's generic rule, which catches "?url=http…", "?u=http%3A%2F%2F…"
 * (URLSearchParams decodes it once) and "/r/http://…".
 */
export function redirectTargets(url: URL, redirectors: readonly Redirector[]): string[] {
  const out: string[] = [];
  const add = (t: string) => {
    const v = t.trim();
    if (v && v.includes('.') && !out.includes(v) && out.length < 4) out.push(v);
  };
  // The URL's getters serialise anew on each call: read each once per URL, not per redirector.
  const host = url.hostname.replace(/\.$/, '');
  const lowerPath = url.pathname.toLowerCase();
  // Without a query no parameter can carry a target (and URLSearchParams is not built).
  const hasQuery = url.search !== '';
  for (const r of redirectors) {
    if (!hasQuery || !matchesHost(r, host) || !matchesPath(r, lowerPath)) continue;
    const v = url.searchParams.get(r.param);
    if (v) add(/^[a-z][a-z0-9+.-]*:/i.test(v) || v.startsWith('//') ? v : `http://${v}`);
  }
  if (hasQuery) {
    for (const [, v] of url.searchParams) {
      const m = SCHEME_TARGET.exec(v.trim());
      if (m) add(m[0]);
    }
  }
  // A target in the path ("/go/http://evil.example/"); the URL parser keeps it percent-free.
  const inPath = /(?:https?|ftp):[/\\]{1,2}[^\s?#]*\.[^\s?#]*/i.exec(url.pathname.slice(1));
  if (inPath) add(inPath[0]);
  return out;
}
