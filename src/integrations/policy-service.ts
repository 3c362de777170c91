// What the policy listeners (Postfix policy delegation, Dovecot's auth policy) share: the
// gateway's one check runner, its brute-force defence and its client limits — the very objects
// the SMTP, IMAP and POP3 sessions use, so an MTA or an IMAP server in front of Portcullis gets
// the same symbols, weights, blocks and logs as the native path. Built by the gateway.
import type { Logger } from '../log.js';
import type { CheckRunner } from '../pipeline/runner.js';
import type { BruteForce } from '../auth/brute-force.js';
import type { ClientLimits } from '../smtp/client-limits.js';

export interface PolicyService {
  readonly runner: CheckRunner;
  readonly bruteForce: BruteForce;
  /** Connection, message and recipient rates per client (limits.*), in the shared state store. */
  readonly limits: ClientLimits;
  /** relay.trusted_networks: exempt from the limits, as on the SMTP path. */
  readonly trusted: (address: string) => boolean;
  readonly logger: Logger;
  /** Counts one request (portcullis_policy_requests_total). */
  readonly count?: (listener: string, kind: string, outcome: string) => void;
}
