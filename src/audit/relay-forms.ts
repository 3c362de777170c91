// The classic battery of open-relay address forms, shipped with the code (the audit must not
// read anything outside the program at run time). The forms are facts about address syntax,
// not code: the sixteen MAIL FROM/RCPT TO pairs of nmap's smtp-open-relay script, in its order,
// the extra sender variants of the MAPS relay test, and three forms from the same families
// (a percent hack through the audited domain itself, a trailing dot, an upper-case domain).
//
// Placeholders: {to} and {from} local parts, {ext} the external domain (never contacted: the
// probe stops at RCPT), {EXT} the same in upper case, {srvname} the name in the server's banner
// (else the host name), {ip} the server's address as the inside of an address literal
// ("192.0.2.1", "IPv6:2001:db8::1"), {domain} the audited domain.
//
// "direct" forms name the external domain as the final destination in a way every MTA
// understands (RFC 5321 says a source route is to be ignored, so "@relay:user@ext" is direct):
// accepting one is an open relay. The other forms are tricks whose meaning depends on the
// MTA's address rewriting (percent hack, bang paths, quoted local parts, double @); accepting
// one at RCPT is a warning: it may be relayed, or delivered to a local catch-all.

export interface RelayForm {
  readonly id: string;
  readonly mailFrom: string;
  readonly rcptTo: string;
  readonly technique: string;
  readonly direct: boolean;
}

export const RELAY_FORMS: readonly RelayForm[] = [
  { id: 'nmap-01', mailFrom: '', rcptTo: '{to}@{ext}', technique: 'null sender', direct: true },
  { id: 'nmap-02', mailFrom: '{from}@{ext}', rcptTo: '{to}@{ext}', technique: 'straight relay, external sender', direct: true },
  { id: 'nmap-03', mailFrom: '{from}@{srvname}', rcptTo: '{to}@{ext}', technique: "sender claims the server's own name", direct: true },
  { id: 'nmap-04', mailFrom: '{from}@[{ip}]', rcptTo: '{to}@{ext}', technique: "sender claims the server's own address literal", direct: true },
  { id: 'nmap-05', mailFrom: '{from}@[{ip}]', rcptTo: '{to}%{ext}@[{ip}]', technique: 'percent hack via address literal', direct: false },
  { id: 'nmap-06', mailFrom: '{from}@[{ip}]', rcptTo: '{to}%{ext}@{srvname}', technique: 'percent hack via server name', direct: false },
  { id: 'nmap-07', mailFrom: '{from}@[{ip}]', rcptTo: '"{to}@{ext}"', technique: 'quoted local part with @, no domain', direct: false },
  { id: 'nmap-08', mailFrom: '{from}@[{ip}]', rcptTo: '"{to}%{ext}"', technique: 'quoted local part with %, no domain', direct: false },
  { id: 'nmap-09', mailFrom: '{from}@[{ip}]', rcptTo: '{to}@{ext}@[{ip}]', technique: 'double @ via address literal', direct: false },
  { id: 'nmap-10', mailFrom: '{from}@[{ip}]', rcptTo: '"{to}@{ext}"@[{ip}]', technique: 'quoted local part with @, at address literal', direct: false },
  { id: 'nmap-11', mailFrom: '{from}@[{ip}]', rcptTo: '{to}@{ext}@{srvname}', technique: 'double @ via server name', direct: false },
  { id: 'nmap-12', mailFrom: '{from}@[{ip}]', rcptTo: '@[{ip}]:{to}@{ext}', technique: 'source route via address literal', direct: true },
  { id: 'nmap-13', mailFrom: '{from}@[{ip}]', rcptTo: '@{srvname}:{to}@{ext}', technique: 'source route via server name', direct: true },
  { id: 'nmap-14', mailFrom: '{from}@[{ip}]', rcptTo: '{ext}!{to}', technique: 'UUCP bang path, no domain', direct: false },
  { id: 'nmap-15', mailFrom: '{from}@[{ip}]', rcptTo: '{ext}!{to}@[{ip}]', technique: 'bang path at address literal', direct: false },
  { id: 'nmap-16', mailFrom: '{from}@[{ip}]', rcptTo: '{ext}!{to}@{srvname}', technique: 'bang path at server name', direct: false },
  { id: 'maps-quote', mailFrom: '{from}@{srvname}', rcptTo: '"{to}@{ext}"', technique: 'quoted local part, sender at the server name', direct: false },
  { id: 'maps-03', mailFrom: '{from}@localhost', rcptTo: '{to}@{ext}', technique: 'sender @localhost', direct: true },
  { id: 'maps-04', mailFrom: '{from}', rcptTo: '{to}@{ext}', technique: 'unqualified sender', direct: true },
  { id: 'maps-01', mailFrom: '{to}@{ext}', rcptTo: '{to}@{ext}', technique: 'sender equals recipient', direct: true },
  { id: 'extra-percent-domain', mailFrom: '{from}@{ext}', rcptTo: '{to}%{ext}@{domain}', technique: 'percent hack via the audited domain', direct: false },
  { id: 'extra-trailing-dot', mailFrom: '{from}@{ext}', rcptTo: '{to}@{ext}.', technique: 'trailing dot on the external domain', direct: true },
  { id: 'extra-upper-case', mailFrom: '{from}@{ext}', rcptTo: '{to}@{EXT}', technique: 'upper-case external domain', direct: true },
];

export interface RelayValues {
  readonly to: string;
  readonly from: string;
  readonly ext: string;
  readonly srvname: string;
  /** The inside of an address literal: "192.0.2.1" or "IPv6:2001:db8::1". */
  readonly ip: string;
  readonly domain: string;
}

export function fillForm(text: string, v: RelayValues): string {
  return text.replace(/\{(to|from|ext|EXT|srvname|ip|domain)\}/g, (_, key: string) =>
    key === 'EXT' ? v.ext.toUpperCase() : v[key as keyof RelayValues]);
}
