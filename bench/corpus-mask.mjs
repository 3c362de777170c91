// Masks the artefacts of a dev corpus that separate spam from ham for the wrong reason, before any
// engine (Portcullis or a peer) sees a message. See /work/shared/corpus/MANIFEST.md, "Caveats",
// and docs/spam-accuracy.md, "Masking", for why each one goes.
//
//   maskMessage(buf, level) → Buffer      level: 'none' | 'verdicts' | 'modern'
//
// 'verdicts' drops upstream filter verdicts only (X-Spam-*, X-Virus-*, CRM114, …): a receiving
// gateway never trusts them, and a model must not learn "X-Spam-Flag: YES ⇒ ham" from a
// collector's false positives. 'modern' also removes, from messages that came through the list
// archive (a Received/Delivered-To naming lfdr.de), what the lists and the selection added: list
// headers, the archive hop, the list's subject tag and footer, reply prefixes and In-Reply-To/
// References/Cc (list ham was selected as replies, list spam as non-replies). Mail of the foff
// collection keeps its own List-Unsubscribe and reply fields: the senders wrote them. At either
// level CRLF becomes LF.

/** Header fields an upstream filter or the archive added (lower-case name tests). */
const VERDICT = /^(x-spam(-[a-z0-9-]+)?|x-virus-[a-z0-9-]+|x-crm114-[a-z0-9-]+|x-amavis-[a-z0-9-]+|x-bogosity|x-ham-report|x-barracuda-[a-z0-9-]+|x-proofpoint-[a-z0-9-]+|x-mimecast-[a-z0-9-]+|x-forefront-antispam-report|x-microsoft-antispam(-[a-z0-9-]+)?|x-ms-exchange-organization-scl|x-portcullis-[a-z0-9-]+)$/;
/** Fields a mailing list (or Google Groups, Mailman, groups.io) adds on the way to the archive. */
const LIST = /^(list-[a-z-]+|x-mailing-list|mailing-list|x-mailman-[a-z-]+|x-beenthere|precedence|errors-to|x-original-to|delivered-to|x-original-sender|x-original-authentication-results|x-google-group-id|x-spam-checked-in-group|x-original-recipient|x-google-groups-[a-z-]+|x-groupsio-[a-z-]+|x-gm-message-state|x-list-[a-z-]+|x-loop|x-no-archive|archived-at|x-archives-hash|x-archived-at|x-ml-[a-z-]+|x-headers-end|x-content-filtered-by|message-id-hash|x-message-id-hash|x-mailfrom|x-topics|x-rcpt-to)$/;
/** Selection artefacts of the list subsets (replies kept as ham, non-replies as spam). */
const SELECTION = /^(in-reply-to|references|cc|thread-index|thread-topic)$/;
/** Hops and results of the archive itself, whatever the label. */
const ARCHIVE_HOST = /\bmail\.lfdr\.de\b|\blfdr\.de\b/i;

// List footers as the list software appends them to a text part (not inside base64 parts,
// which stay as they are: decoding and re-encoding would change more than the footer).
const FOOTERS = [
  // Mailman 2 and 3: a rule of underscores, the list name, listinfo/unsubscribe lines.
  /\n_{20,}\n[^\n]{0,120}(mailing list|discussion list)[^\n]*(\n[^\n]*(listinfo|unsubscribe|lists\.|mailman|https?:)[^\n]*)*\n?/gi,
  // Google Groups.
  /\n(-- ?\n)?You received this message because you are subscribed to the Google Groups[\s\S]{0,800}?(optout|groups\.google\.com[^\n]*)\n?/gi,
  // groups.io.
  /\n-=-=-=-=-=-=-=-=-=-=-=-\n[\s\S]{0,800}?-=-=-=-=-=-=-=-=-=-=-=-\n?/g,
];

/** The list's short name from List-Id ("Linux MTD … <linux-mtd.lists.infradead.org>" → linux-mtd). */
function listNames(fields) {
  const names = new Set();
  for (const f of fields) {
    if (f.name !== 'list-id' && f.name !== 'list-post' && f.name !== 'x-beenthere') continue;
    const v = f.value;
    const id = /<([^>]+)>/.exec(v)?.[1] ?? v.trim();
    const local = id.replace(/^mailto:/i, '').split(/[.@]/)[0];
    if (local) names.add(local.toLowerCase());
    const display = v.replace(/<[^>]*>/g, '').trim();
    if (display && display.length < 60) names.add(display.toLowerCase());
  }
  return names;
}

/** Splits a raw header block into fields, keeping each field's exact lines. */
function splitFields(head) {
  const fields = [];
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1].lines.push(line);
    else if (line) fields.push({ lines: [line] });
  }
  for (const f of fields) {
    const first = f.lines[0];
    const colon = first.indexOf(':');
    f.name = colon > 0 ? first.slice(0, colon).trim().toLowerCase() : '';
    f.value = [first.slice(colon + 1), ...f.lines.slice(1)].join(' ').trim();
  }
  return fields;
}

export function maskMessage(buf, level = 'modern') {
  if (level === 'none') return buf;
  // latin1 round-trips every byte, so 8-bit bodies come out as they went in.
  let text = buf.toString('latin1');
  text = text.replace(/\r\n?/g, '\n');
  const nl = text.indexOf('\n\n');
  const head = nl < 0 ? text : text.slice(0, nl);
  let body = nl < 0 ? '' : text.slice(nl);
  const fields = splitFields(head);
  // List and selection masks apply to what came through the list archive (its mail.lfdr.de hop):
  // a newsletter's own List-Unsubscribe, or a reply in the foff collection, is the sender's and stays.
  const modern = level === 'modern' && fields.some((f) => ['received', 'delivered-to', 'x-original-to'].includes(f.name) && ARCHIVE_HOST.test(f.value));
  const names = modern ? listNames(fields) : new Set();
  const kept = fields.filter((f) => {
    if (!f.name) return true;
    if (VERDICT.test(f.name)) return false;
    if (!modern) return true;
    if (LIST.test(f.name) || SELECTION.test(f.name)) return false;
    // The archive's own hop and its verdicts on it.
    if ((f.name === 'received' || f.name === 'authentication-results' || f.name.startsWith('arc-') || f.name === 'received-spf') && ARCHIVE_HOST.test(f.value)) return false;
    // The list's bounce address stands in Return-Path and Sender of list spam and ham alike.
    if ((f.name === 'return-path' || f.name === 'sender') && /-bounces[+@]|-owner@|\+lists\+|lfdr\.de|googlegroups\.com|groups\.io/i.test(f.value)) return false;
    return true;
  });
  if (modern) {
    for (const f of kept) {
      if (f.name !== 'subject') continue;
      // Drop reply prefixes (a selection artefact here) and the list's own tag, e.g. "[linux-mtd]".
      let v = f.lines.join('\n').slice(f.lines[0].indexOf(':') + 1);
      let before;
      do {
        before = v;
        v = v.replace(/^\s*(re|aw|sv|fwd?|wg)\s*(\[\d+\])?\s*:\s*/i, ' ');
        v = v.replace(/^\s*\[([^\]\n]{1,60})\]\s*/, (m, tag) => (names.has(tag.toLowerCase()) || [...names].some((n) => tag.toLowerCase().replace(/\s+/g, '-') === n) ? ' ' : m));
      } while (v !== before);
      f.lines = `Subject:${v.startsWith(' ') ? '' : ' '}${v}`.split('\n');
    }
    for (const re of FOOTERS) body = body.replace(re, '\n');
  }
  const out = kept.map((f) => f.lines.join('\n')).join('\n') + body;
  return Buffer.from(out, 'latin1');
}
