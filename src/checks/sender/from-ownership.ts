// A logged-in user may put only its own addresses (and aliases that deliver to it) in From:,
// as in MAIL FROM (checked by the session): a stolen or shared password must not let one user
// write as another. Mail without a login (MX) is judged by SPF/DMARC instead. FROM_NOT_OWNED is
// declared protocol safety (symbols.ts): refused in observe mode too, like MAIL FROM ownership.
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { Check } from '../types.js';
import { reply } from '../../protocol/reply.js';

type Parsed = { address?: string; group?: Parsed[] };

/** The addresses in an address header value (groups flattened), as written. */
export function addressesOf(value: string): string[] {
  const flat = (list: Parsed[]): string[] => list.flatMap((p) => (p.group ? flat(p.group) : p.address ? [p.address] : []));
  return flat(addressparser(value) as Parsed[]);
}

export function fromOwnership(owns: (user: string, address: string) => boolean): Check<'data'> {
  return {
    name: 'from_ownership',
    stage: 'data',
    run({ conn, message }) {
      const user = conn.authUser;
      if (!user) return {};
      for (const field of message.headers.filter((h) => h.key === 'from')) {
        const list = addressesOf(field.value);
        if (!list.length) {
          return { symbols: [{ name: 'FROM_NOT_OWNED', reason: 'From: header has no address', reply: reply(553, '5.7.1', 'Error: From: header has no address') }] };
        }
        const foreign = list.find((a) => !owns(user, a));
        if (foreign) {
          return {
            symbols: [{
              name: 'FROM_NOT_OWNED', reason: `From: <${foreign}> is not an address of ${user}`,
              reply: reply(553, '5.7.1', `<${foreign}>: From: header address not owned by user ${user}`),
            }],
          };
        }
      }
      return {};
    },
  };
}
