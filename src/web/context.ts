// What the console's page modules share: its dependencies (given by the gateway) and the
// request helpers the server adds (rendering, the role checks). Apart from server.ts so that
// the pages and the server do not import each other.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AccountStore } from '../auth/accounts.js';
import type { BruteForce } from '../auth/brute-force.js';
import type { TlsManager } from '../tls/certificates.js';
import type { TraceStore } from '../trace/trace-store.js';
import type { Thresholds } from '../pipeline/policy.js';
import type { QueuedView } from '../queue/describe.js';
import type { ConsoleConfig } from './config.js';
import type { SessionStore, ConsoleSession } from './sessions.js';
import type { SafeHtml } from './html.js';
import type { PageOptions } from './layout.js';
import type { Quarantine } from '../quarantine/quarantine.js';
import type { Links } from '../quarantine/links.js';
import type { ReportsStore } from '../reports/store.js';
import type { JunkTrainHook } from '../mailbox/imap/services.js';

/** A lock as `portcullis user locks --json` prints it (src/pipeline/outbound/limits.ts). */
export interface OutboundLock {
  readonly subject: string;
  readonly code: string;
  readonly reason: string;
  readonly since: string;
}

/** The queue as the control socket drives it (src/gateway/gateway.ts). */
export interface QueueControl {
  list(): QueuedView[];
  flush(): number;
  delete(id: string): Promise<'deleted' | 'busy' | 'unknown'>;
  /** Holds / releases one message (src/queue/hold.ts, as `portcullis queue hold|release ID`); the ids changed. */
  hold(id: string): Promise<string[]>;
  release(id: string): Promise<string[]>;
  /** The outbound locks (`portcullis user locks`) and `user unlock USER|IP`. */
  locks(): Promise<OutboundLock[]>;
  unlock(subject: string): Promise<boolean>;
}

/** The quarantine as the console uses it (src/gateway/quarantine.ts builds it). */
export interface ConsoleQuarantine {
  readonly store: Quarantine;
  readonly links: Links;
  /** Teaches Bayes from an original (absent: Bayes is off). */
  readonly learn?: (raw: Buffer, cls: 'ham' | 'spam', user: string) => Promise<void>;
}

export interface ConsoleDeps {
  readonly config: ConsoleConfig;
  readonly thresholds: Thresholds;
  readonly tls: TlsManager;
  readonly accounts: AccountStore;
  readonly bruteForce: BruteForce;
  readonly trace: TraceStore;
  readonly queue: QueueControl;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Absent when quarantine.enabled is false: no quarantine pages, and /q/link answers 404. */
  readonly quarantine?: ConsoleQuarantine;
  /** The complaints and DMARC / TLS-RPT reports received (src/gateway/reports.ts); absent: no reports page. */
  readonly reports?: ReportsStore;
  /** The users' Maildirs for the Junk page, and the hook IMAP's Junk moves call (absent: no Junk page). */
  readonly junk?: { readonly dataDir: string; readonly onJunkTrain?: JunkTrainHook };
}

export interface ConsoleServer {
  readonly address: { address: string; port: number };
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: ConsoleSession;
  }
}

/** What the page modules get: the dependencies and the request helpers. */
export interface ConsoleContext extends ConsoleDeps {
  readonly sessions: SessionStore;
  readonly log: Logger;
  /** Failed console logins since start (the dashboard shows them beside SMTP's). */
  failedLogins: number;
  /** The quarantine pages exist (a quarantine store was given). */
  readonly quarantineEnabled: boolean;
  /** The reports page exists (a reports store was given). */
  readonly reportsEnabled: boolean;
  /** The Junk training page exists. */
  readonly junkEnabled: boolean;
  render(req: FastifyRequest, reply: FastifyReply, opts: Omit<PageOptions, 'session'>, body: SafeHtml, status?: number): FastifyReply;
  /** The logged-in user, or a redirect to the login page (undefined: the reply is sent). */
  user(req: FastifyRequest, reply: FastifyReply): string | undefined;
  /** True for an administrator; otherwise a 403 page is sent. */
  admin(req: FastifyRequest, reply: FastifyReply): boolean;
}
