// The symbols of the impersonation check (impersonation.ts). Weights in conf/scores.yaml.
import { declare } from '../registry.js';

export const PHISH_SYMBOLS = declare('phishing', {
  FROM_BRAND_MISMATCH: 'From: display name names a brand (phishing.brands or the built-in list) the address does not belong to',
  FROM_NAME_HOMOGLYPH: 'From: display name spells a brand with look-alike characters (BIueCross, Amaz0n, Cyrillic letters)',
  FROM_NAME_OUR_DOMAIN: 'From: display name names one of our domains; the address is elsewhere',
  FROM_NAME_ADDRESS_DIFF: 'From: display name shows an e-mail address of another domain than the real one',
  FROM_LOOKALIKE_DOMAIN: 'From: domain is one letter or a look-alike character away from ours or a brand\'s',
  LINK_LOOKALIKE_DOMAIN: 'a link goes to a domain one letter or a look-alike character away from ours or a brand\'s',
  LINK_RECIPIENT_FRAGMENT: 'a link carries the recipient\'s address after # (plainly, URL-encoded or in base64): a phishing kit pre-filling the login',
  HTML_ATTACH_CREDENTIALS: 'an HTML/SVG attachment is a page asking for a password or login (and sending it away)',
  HTML_ATTACH_OBFUSCATED: 'an HTML/SVG attachment runs obfuscated script (atob, unescape, eval, base64 layers)',
  HTML_ATTACH_REDIRECT: 'an HTML/SVG attachment sends the browser to another site when opened',
  SVG_ACTIVE_CONTENT: 'an SVG image attachment carries script or embedded HTML',
  ATTACH_LURE_NAME: 'one of the above, in an attachment named like an invoice, payment, voicemail or shared document',
});
