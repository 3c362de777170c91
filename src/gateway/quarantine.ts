// The quarantine in the running gateway: the store under data_dir, the releaser (local INBOX or
// the queue), what the SMTP sessions keep there, the control-socket commands, and the digest timer.
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { MaildirDelivery } from '../delivery/maildir.js';
import type { Queue } from '../queue/queue.js';
import type { AccountStore } from '../auth/accounts.js';
import { mailboxPath } from '../auth/accounts.js';
import type { StateStore } from '../store/store.js';
import type { SessionQuarantine } from '../smtp/session.js';
import { Quarantine } from '../quarantine/quarantine.js';
import { createReleaser } from '../quarantine/release.js';
import { runQuarantineCommand } from '../quarantine/commands.js';
import { createLinks, type Links } from '../quarantine/links.js';
import { DigestScheduler } from '../quarantine/digest.js';
import { SharedQuarantineIndex } from '../quarantine/shared-index.js';

export interface GatewayQuarantine {
  readonly quarantine: Quarantine;
  readonly links: Links;
  /** What the SMTP sessions keep in it. */
  readonly session: SessionQuarantine;
  /** `quarantine.<command>` on the control socket. */
  command(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

export interface GatewayQuarantineDeps {
  readonly logger: Logger;
  readonly maildir: MaildirDelivery;
  readonly queue: Queue;
  readonly accounts: AccountStore;
  readonly store: StateStore;
  readonly newId: () => string;
}

/** The quarantine, or undefined when quarantine.enabled is false. */
export function startQuarantine(config: Config, deps: GatewayQuarantineDeps): GatewayQuarantine | undefined {
  const log = deps.logger.child({ component: 'quarantine' });
  if (typeof config.antivirus.quarantine === 'string') {
    log.warn({ event: 'config_deprecated' }, `antivirus.quarantine is a folder (${config.antivirus.quarantine}); infected mail is now kept in the quarantine under data_dir (docs/quarantine.md): write antivirus.quarantine: true`);
  }
  if (!config.quarantine.enabled) {
    if (config.antivirus.quarantine) log.warn({ event: 'quarantine_disabled' }, 'antivirus.quarantine is on but quarantine.enabled is false: infected mail is not kept');
    return undefined;
  }
  const dataDir = config.data_dir;
  const quarantine = Quarantine.open({
    dataDir, config: config.quarantine, logger: log, fsync: config.queue.fsync, shared: config.store.backend === 'redis',
    releaser: createReleaser({
      maildir: deps.maildir, mailboxDir: (a) => mailboxPath(dataDir, a), isLocal: (a) => deps.accounts.hasUser(a),
      commit: (m) => deps.queue.commit(m), newId: deps.newId,
    }),
  });
  // Several nodes on one Redis share the index (docs/scaling.md); the originals stay here.
  const s = config.store;
  const shared = s.backend !== 'redis' ? undefined : SharedQuarantineIndex.start(quarantine, {
    url: s.url, sentinel: s.sentinel, cluster: s.cluster, timeoutMs: s.timeout, prefix: s.prefix,
    logger: log, maxAgeMs: config.quarantine.max_age, hostname: config.hostname,
  });
  const links = createLinks({ dataDir, store: deps.store });
  const deliverDigest = async (address: string, message: Buffer) => {
    await deps.maildir.deliver(mailboxPath(dataDir, address), 'INBOX', { size: message.length, stream: () => Readable.from([message]), buffers: [message] });
  };
  const digests = !config.quarantine.digest.enabled ? undefined : new DigestScheduler({
    config: config.quarantine.digest, hostname: config.hostname, quarantine, links, logger: log,
    deliver: deliverDigest, isLocal: (a) => deps.accounts.hasUser(a),
  });
  digests?.start();
  return {
    quarantine,
    links,
    session: {
      add: (entry, original) => quarantine.add(entry, original),
      discard: async (id) => {
        await quarantine.delete(id, { by: 'gateway (message not accepted)' });
      },
      keepInfected: !!config.antivirus.quarantine,
    },
    command: async (cmd, args) => {
      if (cmd !== 'digest') return runQuarantineCommand(quarantine, cmd, args);
      if (!digests) throw new Error('digests are off (quarantine.digest.enabled: false)');
      return { sent: await digests.runNow() };
    },
    async stop() {
      digests?.stop();
      await shared?.close();
      quarantine.close();
    },
  };
}

