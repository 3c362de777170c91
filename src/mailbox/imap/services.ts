// What every IMAP session of one server shares: configuration, the account store and the
// brute-force defence, TLS, the per-folder registry and the structure cache, and the counters
// behind the per-user connection limit.
import type { AccountStore } from '../../auth/accounts.js';
import type { BruteForce } from '../../auth/brute-force.js';
import type { Logger } from '../../log.js';
import type { TlsManager } from '../../tls/certificates.js';
import type { MaildirRegistry } from '../maildir-registry.js';
import type { ImapConfig } from './config.js';
import type { MessageAccess } from './message-access.js';

/** A message moved or copied into Junk (spam) or out of it (ham). */
export interface JunkTrainEvent {
  readonly user: string;
  readonly cls: 'spam' | 'ham';
  /** The message as stored. */
  readonly message: Buffer;
  /** The folder it went to. */
  readonly mailbox: string;
  /** Its file now (in the destination folder). */
  readonly file: string;
}

export type JunkTrainHook = (e: JunkTrainEvent) => void | Promise<void>;

export interface ImapServices {
  readonly config: ImapConfig;
  readonly dataDir: string;
  readonly accounts: AccountStore;
  readonly bruteForce: BruteForce;
  readonly tls: TlsManager;
  readonly logger: Logger;
  /** Largest APPEND. */
  readonly maxLiteral: number;
  readonly registry: MaildirRegistry;
  readonly access: MessageAccess;
  /** Open authenticated sessions per user (the per-user limit). */
  readonly userSessions: Map<string, number>;
  readonly onJunkTrain?: JunkTrainHook;
}
