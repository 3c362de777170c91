// What a milter listener needs from the gateway: the SMTP path's own check runner (every stage:
// DNS lists, SPF, the content checks) and policy, so that a message judged behind Postfix gets
// the symbols, weights, actions and log line it would get on our own port 25.
import type { Logger } from '../../log.js';
import type { CheckRunner } from '../../pipeline/runner.js';
import type { Thresholds } from '../../pipeline/policy.js';
import type { UserSettings } from '../../pipeline/user-settings.js';
import type { MessageModelOptions } from '../../mime/model.js';

export interface MilterService {
  /** The SMTP path's runner: all stages, the site's weights and actions, observe mode. */
  readonly runner: CheckRunner;
  /** Our authserv-id in Authentication-Results (the SMTP path's). */
  readonly hostname: string;
  readonly thresholds: Thresholds;
  readonly observe: boolean;
  /** policy.subject_tag; '' = the Subject is left alone. */
  readonly subjectTag: string;
  /** smtp.max_message_size: a larger message is refused (552) as on our own port. */
  readonly maxMessageSize: number;
  /** How the message model is built (the scan cap, the MIME walk and its inspectors). */
  readonly messageModel: MessageModelOptions;
  /** relay.trusted_networks: clients judged as the SMTP path judges trusted ones. */
  isTrusted(address: string): boolean;
  /** Each recipient's spam settings (thresholds, opt-out, lists), as the SMTP path reads them. */
  readonly users?: { settingsFor(address: string): UserSettings | undefined };
  /** Role addresses (postmaster@, abuse@…): never refused for an earlier finding, never junked. */
  isRole?(address: string): boolean;
  readonly logger: Logger;
  /** Counts one message (portcullis_scan_requests_total, kind "milter", outcome = the action). */
  readonly count?: (listener: string, kind: 'milter', outcome: string) => void;
}
