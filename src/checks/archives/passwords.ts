// Candidate passwords for an encrypted attachment, from the text of the message: malware sent as
// "invoice.zip, password: 1234" puts the password where the victim reads it, because the scanner
// cannot open the archive without it. We read it the same way. Bounded: texts are cut, at most
// `limit` candidates come out, most likely first.
//
// Ranking: (1) the token after a password word and a separator ("Password: X", "pwd - X",
// "mot de passe : X", "the password is X"), (2) a quoted token near a password word, (3) the
// first token of the next line when the password word ends its line, (4) short tokens alone on
// their line, (5) the token right after a password word without a separator ("password 1234").

/** "password" in the languages malware campaigns use most (lower case, matched case-insensitively). */
const WORDS = [
  'passwords?', 'passwort(?:e)?', 'passwd', 'passcode', 'pass', 'pwd', 'pw', 'kennwort', 'mot de passe', 'mdp',
  'contraseña', 'contrasena', 'clave', 'senha', 'parola', 'wachtwoord', 'hasło', 'haslo', 'lösenord', 'losenord',
  'salasana', 'heslo', 'jelszó', 'jelszo', 'пароль', 'şifre', 'sifre', '密码', '密碼', 'パスワード', '비밀번호', 'zip password',
  'archive password', 'pin',
];

const WORD = `(?:${WORDS.join('|')})`;
/**
 * Separators between the word and the value: a colon or equals sign, a dash with a space on one
 * side at least ("pw-77" is a value, "pwd - 77" a word and its value), or "is"/"ist"/"est"/"es"/"é"…
 */
const SEP = String.raw`(?:\s*[:=：]+\s*|\s+[\-–—]+\s*|\s*[\-–—]+\s+|\s+(?:ist|is|est|es|é|è|är|on|jest|je)(?![\p{L}\p{N}])\s*[:\-]?\s*)`;
const QUOTES = `"'“”‘’«»„\`「」`;
const TOKEN = `[^\\s${QUOTES}<>]{1,64}`;

const AFTER_WORD = new RegExp(String.raw`(?<![\p{L}\p{N}])${WORD}(?:\s+(?:for|für|pour|para|del?|of|to|the|zum|zur|du|de la|of the|archive|archivo|file|datei|fichier|zip|attachment|anhang|pièce jointe|documento?)){0,3}${SEP}(?:[${QUOTES}]([^${QUOTES}\n]{1,64})[${QUOTES}]|(${TOKEN}))`, 'giu');
const QUOTED = new RegExp(`[${QUOTES}]([^${QUOTES}\\n]{1,64})[${QUOTES}]`, 'gu');
/** A token that is itself a password word ("Password:") is no candidate. */
const ONLY_WORD = new RegExp(String.raw`^${WORD}[:：.,]*$`, 'iu');
const WORD_RE = new RegExp(String.raw`(?<![\p{L}\p{N}])${WORD}(?![\p{L}\p{N}])`, 'iu');
/** The token right after the word, without a separator ("password 1234"): the weakest tier. */
const WORD_THEN_TOKEN = new RegExp(String.raw`(?<![\p{L}\p{N}])${WORD}\s+(${TOKEN})`, 'giu');
const STOP = new Set(['the', 'a', 'an', 'to', 'for', 'is', 'of', 'and', 'or', 'it', 'this', 'that', 'will', 'be', 'you', 'me', 'with', 'in',
  'on', 'at', 'from', 'please', 'was', 'has', 'have', 'my', 'your', 'our', 'by', 'as', 'if', 'not', 'protected', 'der', 'die', 'das', 'le', 'la', 'el']);
const WORD_AT_END = new RegExp(String.raw`(?<![\p{L}\p{N}])${WORD}\s*[:=：\-–—]?\s*$`, 'iu');

export interface PasswordOptions {
  /** Candidates returned at most (default 20). */
  readonly limit?: number;
  /** Characters of each text looked at (default 64 KiB). */
  readonly maxChars?: number;
}

/** Trailing sentence punctuation is not part of a password ("Password: 1234." → "1234"). */
function clean(token: string): string {
  return token.trim().replace(/[.,;:!?)\]}>]+$/u, '').replace(/^[(<[{]+/u, '');
}

function plausible(token: string): boolean {
  if (token.length < 1 || token.length > 64) return false;
  if (/^(?:https?:|mailto:|www\.)/i.test(token)) return false;
  return !ONLY_WORD.test(token);
}

/**
 * Candidate passwords found in `texts` (plain text; HTML through htmlToText first), most likely
 * first, without duplicates, at most `limit`.
 */
export function passwordCandidates(texts: readonly string[], options: PasswordOptions = {}): string[] {
  const limit = options.limit ?? 20;
  const maxChars = options.maxChars ?? 64 * 1024;
  const tiers: string[][] = [[], [], [], [], []];
  for (const raw of texts) {
    const text = raw.slice(0, maxChars).replace(/\r\n?/g, '\n').normalize('NFC');
    for (const m of text.matchAll(AFTER_WORD)) {
      if (m[1] !== undefined) tiers[0]!.push(m[1].trim());
      else if (m[2] !== undefined) tiers[0]!.push(m[2]);
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const hasWord = WORD_RE.test(line);
      const near = hasWord || (i > 0 && WORD_RE.test(lines[i - 1]!));
      if (near) for (const q of line.matchAll(QUOTED)) tiers[1]!.push(q[1]!.trim());
      if (WORD_AT_END.test(line)) {
        const next = lines.slice(i + 1).find((l) => l.trim() !== '');
        const first = next?.trim().split(/\s+/)[0];
        if (first) tiers[2]!.push(first);
      }
      const lone = line.trim();
      if (/^\S{3,32}$/u.test(lone) && !/^[-=_*#~.]+$/.test(lone)) tiers[3]!.push(lone);
      if (hasWord) {
        for (const m of line.matchAll(WORD_THEN_TOKEN)) if (!STOP.has(m[1]!.toLowerCase())) tiers[4]!.push(m[1]!);
      }
    }
  }
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    for (const v of [t, clean(t)]) {
      if (out.length >= limit || seen.has(v) || !plausible(v)) continue;
      seen.add(v);
      out.push(v);
    }
  };
  for (const tier of tiers) for (const t of tier) add(t);
  return out;
}

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', laquo: '«', raquo: '»', ldquo: '“', rdquo: '”',
  lsquo: '‘', rsquo: '’', ndash: '–', mdash: '—', eacute: 'é', egrave: 'è', ntilde: 'ñ', ouml: 'ö', uuml: 'ü', auml: 'ä', szlig: 'ß', ccedil: 'ç',
};

/** Visible text of an HTML part, for password search: tags dropped, blocks to lines, entities decoded. */
export function htmlToText(html: string, maxChars = 256 * 1024): string {
  return html.slice(0, maxChars)
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<(?:br|\/p|p|\/div|div|\/tr|tr|\/li|li|\/h[1-6]|hr|\/td|\/table)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/gi, (whole, e: string) => {
      if (e[0] === '#') {
        const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return ENTITIES[e.toLowerCase()] ?? whole;
    })
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n');
}
