// Where a recipient goes, decided at RCPT time: a local mailbox, a relay route, or a refusal.
// This is the relay policy: mail for a domain that is not ours leaves only for authenticated
// or explicitly trusted clients. The decision uses the parsed DOMAIN alone (address.ts).
import type { Address } from './address.js';
import { formatAddress } from './address.js';
import { R, reply, type Reply } from '../protocol/reply.js';
import type { RelayConfig, RouteConfig } from '../delivery/config.js';
import type { AccountStore } from '../auth/accounts.js';

export type Resolution =
  | { kind: 'local'; address: string; mailboxes: string[]; external: string[]; role: boolean }
  | { kind: 'relay'; address: string; domain: string; role: false }
  | { kind: 'reject'; reply: Reply; why: string };

export interface ClientStanding {
  readonly authenticated: boolean;
  readonly trusted: boolean;
}

/** What the recipient decision reads of the configuration (a full Config fits). */
export interface RecipientsConfig {
  readonly domains: readonly string[];
  readonly relay: RelayConfig;
  /** Role local parts (postmaster, abuse) and the mailbox they deliver to. */
  readonly roles: { readonly addresses: readonly string[]; readonly mailbox: string };
  /** Direct delivery to MX hosts for domains without a relay route (outbound.delivery.enabled). */
  readonly outbound?: { readonly delivery: { readonly enabled: boolean } };
}

export class RecipientResolver {
  private readonly local: Set<string>;
  private readonly relayDomains: Map<string, Set<string> | undefined>;
  private readonly roles: Set<string>;

  constructor(private readonly config: RecipientsConfig, private readonly accounts: AccountStore) {
    this.local = new Set(config.domains);
    this.relayDomains = new Map(config.relay.domains.map((d) => [d.domain, d.recipients ? new Set(d.recipients.map((r) => r.toLowerCase())) : undefined]));
    this.roles = new Set(config.roles.addresses.map((r) => r.toLowerCase()));
  }

  isLocalDomain(domain: string): boolean {
    return this.local.has(domain);
  }

  /** An authenticated user may send as itself and as aliases that deliver to it. */
  owns(user: string, address: string): boolean {
    const a = address.toLowerCase();
    if (a === user) return true;
    const exp = this.accounts.expand(a, (d) => this.local.has(d));
    return !!exp && exp.users.includes(user);
  }

  /** The route for a non-local domain: the domain's own, else the "*" route. */
  route(domain: string): RouteConfig | undefined {
    const routes = this.config.relay.routes;
    return routes.find((r) => r.domain === domain) ?? routes.find((r) => r.domain === '*');
  }

  /** RCPT TO:<postmaster> without a domain (RFC 5321 s4.5.1): always accepted. */
  postmaster(): Resolution {
    return this.role(this.config.roles.mailbox);
  }

  /**
   * Role mail goes to roles.mailbox: through its alias when it is one (to the people who read
   * it), else straight to its Maildir, account or not — a role address must never bounce.
   */
  private role(address: string): Resolution {
    const mailbox = this.config.roles.mailbox;
    const exp = this.accounts.expand(mailbox, (d) => this.local.has(d));
    if (exp && (exp.users.length || exp.external.length)) return { kind: 'local', address, mailboxes: exp.users, external: exp.external, role: true };
    return { kind: 'local', address, mailboxes: [mailbox], external: [], role: true };
  }

  resolve(addr: Address, standing: ClientStanding): Resolution {
    const shown = formatAddress(addr);
    if (addr.literal) {
      return { kind: 'reject', reply: R.relayDenied(shown), why: 'address literal' };
    }
    if (this.local.has(addr.domain)) return this.resolveLocal(addr, shown);
    if (this.relayDomains.has(addr.domain)) {
      const valid = this.relayDomains.get(addr.domain);
      const key = `${addr.local.toLowerCase()}@${addr.domain}`;
      if (valid && (addr.quoted || !valid.has(key))) return { kind: 'reject', reply: R.unknownRelayUser(shown), why: 'not in relay recipients' };
      return { kind: 'relay', address: key, domain: addr.domain, role: false };
    }
    if (!standing.authenticated && !standing.trusted) {
      return { kind: 'reject', reply: R.relayDenied(shown), why: 'relay denied' };
    }
    // Without a route the mail goes to the domain's MX hosts (docs/outbound.md), unless the
    // administrator turned direct delivery off.
    if (!this.route(addr.domain) && !this.config.outbound?.delivery.enabled) {
      return { kind: 'reject', reply: reply(451, '4.3.5', `<${shown}>: no route to ${addr.domain}; the administrator must configure relay.routes or enable outbound.delivery`), why: 'no route' };
    }
    return { kind: 'relay', address: shown, domain: addr.domain, role: false };
  }

  private resolveLocal(addr: Address, shown: string): Resolution {
    // A quoted local part never names a local account (account names are dot-atoms).
    const local = addr.local.toLowerCase();
    if (!addr.quoted && this.roles.has(local)) return this.role(`${local}@${addr.domain}`);
    if (addr.quoted) return { kind: 'reject', reply: R.unknownUser(shown), why: 'quoted local part' };
    const address = `${local}@${addr.domain}`;
    const expansion = this.accounts.expand(address, (d) => this.local.has(d));
    if (!expansion || (expansion.users.length === 0 && expansion.external.length === 0)) {
      return { kind: 'reject', reply: R.unknownUser(shown), why: 'unknown user' };
    }
    return { kind: 'local', address, mailboxes: expansion.users, external: expansion.external, role: false };
  }
}
