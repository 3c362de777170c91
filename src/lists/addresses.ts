// The addresses of a list (RFC 2369 names them in List-* fields): for team@example.org,
//   team@                      posts
//   team-request@              commands in Subject or body: subscribe, unsubscribe, status, help,
//                              or a reply carrying a confirmation token
//   team-subscribe@ / -join@   subscribe          team-unsubscribe@ / -leave@   unsubscribe
//   team-owner@                to the owners      team-bounces+bob=example.net@  VERP bounces
// and the request commands themselves.
export type ListTarget =
  | { kind: 'post'; list: string }
  | { kind: 'request'; list: string }
  | { kind: 'subscribe'; list: string }
  | { kind: 'unsubscribe'; list: string }
  | { kind: 'owner'; list: string }
  | { kind: 'bounce'; list: string; member?: string };

const SUFFIXES: readonly [string, ListTarget['kind']][] = [
  ['-request', 'request'], ['-subscribe', 'subscribe'], ['-join', 'subscribe'], ['-unsubscribe', 'unsubscribe'], ['-leave', 'unsubscribe'], ['-owner', 'owner'],
];

/** What a local address is for, given whether a list address exists (`isList`). */
export function listTarget(local: string, domain: string, isList: (address: string) => boolean): ListTarget | undefined {
  const l = local.toLowerCase();
  const d = domain.toLowerCase();
  if (isList(`${l}@${d}`)) return { kind: 'post', list: `${l}@${d}` };
  for (const [suffix, kind] of SUFFIXES) {
    if (l.endsWith(suffix) && isList(`${l.slice(0, -suffix.length)}@${d}`)) return { kind, list: `${l.slice(0, -suffix.length)}@${d}` } as ListTarget;
  }
  const m = /^(.+)-bounces(?:\+(.+))?$/.exec(l);
  if (m && isList(`${m[1]}@${d}`)) {
    const tag = m[2];
    const at = tag ? tag.lastIndexOf('=') : -1;
    return { kind: 'bounce', list: `${m[1]}@${d}`, ...(tag && at > 0 && at < tag.length - 1 ? { member: `${tag.slice(0, at)}@${tag.slice(at + 1)}` } : {}) };
  }
  return undefined;
}

const localOf = (list: string) => list.slice(0, list.lastIndexOf('@'));
const domainOf = (list: string) => list.slice(list.lastIndexOf('@') + 1);

export const requestAddress = (list: string) => `${localOf(list)}-request@${domainOf(list)}`;
export const ownerAddress = (list: string) => `${localOf(list)}-owner@${domainOf(list)}`;
export const bouncesAddress = (list: string) => `${localOf(list)}-bounces@${domainOf(list)}`;
/** The VERP return path of one member's copy: team-bounces+bob=example.net@example.org. */
export const verpAddress = (list: string, member: string) => `${localOf(list)}-bounces+${member.replace('@', '=')}@${domainOf(list)}`;
/** RFC 2919 list-id: the list address with "@" as ".". */
export const listId = (list: string) => `${localOf(list)}.${domainOf(list)}`;

export type RequestCommand = 'subscribe' | 'unsubscribe' | 'status' | 'help';

/**
 * The command of a request: the Subject's first word (after Re:/Fwd:), else the first
 * non-empty body line's; a confirmation token anywhere in either wins (a reply to the request).
 */
export function parseRequest(subject: string, body: string): { command: RequestCommand | 'confirm' | 'unknown'; token?: string } {
  const token = /\b([A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{43})\b/.exec(`${subject}\n${body.slice(0, 20_000)}`)?.[1];
  if (token) return { command: 'confirm', token };
  const word = (line: string) => line.replace(/^\s*((re|aw|fwd?|wg)\s*:\s*)*/i, '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const lines = body.split(/\r?\n/).map((x) => x.trim()).filter((x) => x && !x.startsWith('>')).slice(0, 5);
  for (const w of [word(subject), ...lines.map(word)]) {
    if (w === 'subscribe' || w === 'join') return { command: 'subscribe' };
    if (w === 'unsubscribe' || w === 'leave' || w === 'remove') return { command: 'unsubscribe' };
    if (w === 'status' || w === 'who' || w === 'info') return { command: 'status' };
    if (w === 'help') return { command: 'help' };
  }
  return { command: 'unknown' };
}
