// The symbols of the URI check (src/checks/uri/): the fixed heuristics and local lists, and one per
// result of each configured URI list, URIBL_<LIST>[_<RESULT>], weighted with the list's weight.
import { declare, type SymbolDecl } from '../registry.js';
import type { UriConfig } from './config.js';
import { uriListName } from './uribl.js';

export const URI_SYMBOLS = declare('uri', {
  URIBL_TEMPFAIL: 'a URI list could not be asked (DNS error, refusal answer)',
  URI_LOCAL_BLOCK: 'a linked domain is on a local block list (uri.block_files)',
  URI_LOCAL_ALLOW: 'every linked domain is on a local allow list',
  PHISH_LINK_MISMATCH: 'link text shows one address, the link goes to another domain',
  URI_NUMERIC_IP: 'a link to a bare IP address',
  URI_OBFUSCATED_IP: 'an IP written as one decimal, hex or octal number',
  URI_USERINFO_TRICK: 'http://bank.example@evil.example/: the host is after the @',
  URI_IDN_LOOKALIKE: 'a punycode or mixed-script host that imitates another',
  URI_SHORTENER: 'a URL shortener hides the destination (informational)',
  HTML_FORM_FOREIGN: 'a form asking for a password or card posts to a foreign domain',
  URI_JAVASCRIPT_LINK: 'a javascript: link',
  URI_DATA_LINK: 'a data: link',
});

/** The symbols of each configured URI list, named as compileUriLists() names them. */
export function uriListSymbols(config: Pick<UriConfig, 'lists'>): SymbolDecl[] {
  const out: SymbolDecl[] = [];
  for (const l of config.lists) {
    const zone = l.zone.toLowerCase().replace(/\.$/, '');
    const base = `URIBL_${(l.name ?? uriListName(zone)).toUpperCase()}`;
    const sub = (v: string | { name: string; weight?: number }) => {
      const o = typeof v === 'string' ? { name: v } : v;
      out.push({ name: `${base}_${o.name.toUpperCase()}`, group: 'uri', weight: o.weight ?? l.weight, description: `a linked ${l.type} listed by ${zone} (${o.name})` });
    };
    if (l.bitmask) Object.values(l.bitmask).forEach(sub);
    else if (l.codes && !Array.isArray(l.codes)) Object.values(l.codes).forEach(sub);
    else out.push({ name: base, group: 'uri', weight: l.weight, description: `a linked ${l.type} listed by ${zone}` });
  }
  return out;
}
