// What the scan listeners (spamd, scan-http) share: the gateway's one message scanner and the
// few site facts their answers need. Built by the gateway (src/gateway/gateway.ts).
import type { Logger } from '../log.js';
import type { MessageScanner } from '../pipeline/message-scanner.js';
import { NetworkSet } from '../net/cidr.js';

export interface ScanService {
  readonly scanner: MessageScanner;
  /** Named in spamd's report. */
  readonly hostname: string;
  /** policy.subject_tag: PROCESS tags the Subject as the SMTP path does; rspamd's "rewrite subject". */
  readonly subjectTag: string;
  /** smtp.max_message_size: a larger body is refused before it is read. */
  readonly maxMessageSize: number;
  readonly logger: Logger;
  /** Counts one request (portcullis_scan_requests_total). */
  readonly count?: (listener: string, kind: 'scan' | 'learn', outcome: string) => void;
  /**
   * spamd's `User:` or rspamd's `Deliver-To` → the address whose spam settings apply: an address
   * as given, a bare name qualified with the first local domain that has that account (else the
   * first local domain). An address without settings gets the site's.
   */
  userAddress(user: string): string | undefined;
}

/** A listener's `allow` networks (spamd --allowed-ips); IPv4-mapped IPv6 addresses count as IPv4. */
export function allowList(networks: readonly string[]): (address: string | undefined) => boolean {
  const set = new NetworkSet(networks);
  return (address) => {
    if (!address) return false;
    const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    return set.has(a);
  };
}

/** Values from a client that go into logs: printable, bounded. */
export const printable = (s: string, max = 200) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
