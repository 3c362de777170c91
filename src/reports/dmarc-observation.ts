// What the DMARC evaluation of one received message leaves for the aggregate report we may send
// to the From domain (RFC 7489 7.2): the row, the identifiers, the raw results and the policy
// as published. Written by the dkim_dmarc_arc check through a callback the gateway gives it
// (src/gateway/checks.ts), aggregated per UTC day in reports.db (dmarc-out.ts).

export interface DmarcObservation {
  /** Epoch ms. */
  readonly at: number;
  readonly sourceIp: string;
  /** The From domain evaluated (identifiers/header_from). */
  readonly headerFrom: string;
  /** The MAIL FROM domain (identifiers/envelope_from), "" for the null sender. */
  readonly envelopeFrom: string;
  /** The domain whose record applied (policy_published/domain): the From domain or its organizational domain. */
  readonly policyDomain: string;
  /** The DMARC record as published (its p, sp, pct, adkim, aspf and rua are read from it). */
  readonly record: string;
  /** What we decided for the message (policy_evaluated/disposition). */
  readonly disposition: 'none' | 'quarantine' | 'reject';
  /** policy_evaluated/reason: why the disposition differs from the policy, if it does. */
  readonly reasons: readonly ('forwarded' | 'sampled_out' | 'trusted_forwarder' | 'mailing_list' | 'local_policy' | 'other')[];
  /** The aligned results (policy_evaluated/dkim, spf). */
  readonly dkimAligned: boolean;
  readonly spfAligned: boolean;
  /** auth_results/dkim: each signature's domain, selector and result. */
  readonly dkim: readonly { readonly domain: string; readonly selector: string; readonly result: string }[];
  /** auth_results/spf (scope mfrom), absent when SPF did not run. */
  readonly spf?: { readonly domain: string; readonly result: string };
}
