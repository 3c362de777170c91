// Wires the parts into a running gateway and takes it down again. Every dependency is created
// here and passed down (STYLE.md: no global state), so tests can start several gateways.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type http from 'node:http';
import type net from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createMetrics, serveMetrics, type Metrics } from '../metrics.js';
import { mailboxPath } from '../auth/accounts.js';
import { startTmpSweeper } from '../delivery/maildir-sweep.js';
import { openAccountStore } from '../auth/accounts-open.js';
import { TlsManager } from '../tls/certificates.js';
import { Queue, type QueuedMessage, type QueuedRecipient } from '../queue/queue.js';
import { MaildirDelivery } from '../delivery/maildir.js';
import { RelayDelivery } from '../delivery/relay.js';
import { DeliveryRouter } from '../delivery/router.js';
import { MxDelivery, ownAddresses as mxOwnAddresses } from '../delivery/mx-delivery.js';
import { RecipientResolver } from '../smtp/recipients.js';
import { SmtpListeners } from '../smtp/server.js';
import { CheckRunner } from '../pipeline/runner.js';
import { buildPolicy } from './policy.js';
import { builtinChecks, builtinSymbols, clamdClient, dnsBudgetMs, messageModelOptions } from './checks.js';
import { createSpamEngine } from '../checks/spam-engine.js';
import { UserPolicies } from '../pipeline/user-policies.js';
import { startPop3 } from '../mailbox/pop3/server.js';
import { startImap } from '../mailbox/imap/index.js';
import { NetworkSet } from '../net/cidr.js';
import { openStateStore } from '../store/open.js';
import { BruteForce } from '../auth/brute-force.js';
import { serveControl } from '../control/socket.js';
import { describeQueued } from '../queue/describe.js';
import { buildDsn, headerSection } from '../queue/dsn.js';
import { Readable } from 'node:stream';
import { createResolver, resolverOptions } from '../dns/resolver.js';
import { ZoneSet } from '../dns/zones/zone-mirror.js';
import { SelfWatch, reportMessage } from '../audit/self-watch.js';
import { startZoneServer } from '../dns/zone-server.js';
import { ClientLimits } from '../smtp/client-limits.js';
import { createOutboundTlsPolicy, type Submit } from '../delivery/tls-policy/outbound-tls-policy.js';
import type { RouterDeps } from '../delivery/router.js';
import { OutboundSigner } from '../delivery/dkim/outbound.js';
import { DkimKeyStore } from '../delivery/dkim/keys.js';
import { startReportIntake } from './reports.js';
import { OutboundGuard } from '../pipeline/outbound/limits.js';
import { outboundControl, queueAlert } from './outbound.js';
import { TraceStore, traceRecorder } from '../trace/trace-store.js';
import { startConsole } from '../web/server.js';
import type { OutboundLock } from '../web/context.js';
import type { JunkTrainEvent } from '../mailbox/imap/services.js';
import { startQuarantine, type GatewayQuarantine } from './quarantine.js';
import { startLists, type RunningLists } from './lists.js';
import { isSmtpListener } from '../smtp/config.js';
import { requiredHeaders } from '../checks/headers/required-headers.js';
import { MessageScanner } from '../pipeline/message-scanner.js';
import { startMilterListeners, startPolicyListeners, startScanListeners } from '../integrations/listeners.js';

export interface Gateway {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly queue: Queue;
  /** The quarantine (absent when quarantine.enabled is false): the store, its links, its commands. */
  readonly quarantine?: GatewayQuarantine;
  addresses(): Record<string, { address: string; port: number }>;
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/** The router's signing hook: DKIM keys under data/dkim, outbound.dkim settings (docs/outbound-dkim.md). */
function dkimSigner(config: Config, dataDir: string, logger: Logger): NonNullable<RouterDeps['sign']> {
  const trusted = new NetworkSet(config.relay.trusted_networks);
  const signer = new OutboundSigner({
    store: new DkimKeyStore(dataDir), config: config.outbound.dkim, trusted: (ip) => trusted.has(ip), logger: logger.child({ component: 'dkim' }),
    hostname: config.hostname, sealDomains: [config.hostname, ...config.domains],
  });
  return (msg, content) => signer.sign(msg, content);
}

/** Queue ids: time-ordered; unique across restarts (time) and processes (a random node part); safe as file names. */
export function queueIdGenerator(): () => string {
  let last = 0;
  let seq = 0;
  const node = crypto.randomBytes(2).toString('hex').toUpperCase();
  return () => {
    const now = Date.now();
    seq = now === last ? seq + 1 : 0;
    last = now;
    return `${now.toString(36).toUpperCase()}${seq.toString(36).toUpperCase().padStart(3, '0')}${node}`;
  };
}

export function pidFile(dataDir: string): string {
  return path.join(dataDir, 'portcullis.pid');
}

/** One gateway per data directory: a second one would share the queue and corrupt it. */
export function acquireLock(dataDir: string): () => void {
  const file = pidFile(dataDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(`another Portcullis (pid ${pid}) is using ${dataDir}; stop it first`);
      }
      fs.rmSync(file, { force: true }); // stale, left by a crash
    }
  }
  throw new Error(`cannot take the lock ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function startGateway(config: Config, logger: Logger): Promise<Gateway> {
  const dataDir = config.data_dir;
  await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const unlock = acquireLock(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [unlock];
  try {
    const metrics = createMetrics();
    // The node's accounts.db, or (store.backend: redis) the accounts every node shares.
    const accounts = await openAccountStore(config.store, dataDir, { logger: logger.child({ component: 'accounts' }) });
    cleanups.unshift(() => accounts.close());
    const maildir = new MaildirDelivery({ fsync: config.queue.fsync, hostname: config.hostname });
    const tlsManager = await TlsManager.create({ tls: config.tls, hostname: config.hostname, dataDir, logger });
    const qlog = logger.child({ component: 'queue' });
    const failedDir = path.join(dataDir, 'failed');
    let queueRef: Queue | undefined;
    // Delivery outcomes of authenticated mail feed the outbound baseline (failure rate).
    let outboundRef: OutboundGuard | undefined;
    // A list copy the queue gives up on counts against the member (src/gateway/lists.ts).
    let listsRef: RunningLists | undefined;
    const remoteOutcome = (m: QueuedMessage, r: QueuedRecipient, delivered: boolean) => {
      if (r.destination.kind === 'relay') void outboundRef?.outcome(m, delivered);
    };
    const { queue, recovered, report } = await Queue.open({
      dir: path.join(dataDir, 'queue'),
      fsync: config.queue.fsync,
      segmentSize: config.queue.segment_size,
      concurrency: config.queue.delivery_concurrency,
      retryInitial: config.queue.retry_initial,
      retryMax: config.queue.retry_max,
      lifetime: config.queue.lifetime,
      logger: qlog,
      minFree: { bytes: config.queue.min_free, inodes: config.queue.min_free_inodes },
      events: {
        delivered: (m, r, ms) => {
          qlog.info({ event: 'delivered', id: m.id, to: r.address, via: r.destination.kind, ms, reply: r.lastReply }, 'delivered');
          remoteOutcome(m, r, true);
        },
        deferred: (m, r) => qlog.info({ event: 'deferred', id: m.id, to: r.address, attempts: r.attempts, reply: r.lastReply }, 'deferred'),
        failed: (m, r) => {
          metrics.undeliverable.inc();
          qlog.warn({ event: 'undeliverable', id: m.id, sender: m.sender, to: r.address, reply: r.lastReply, authenticated: m.authenticated }, 'undeliverable: recorded, not bounced');
          remoteOutcome(m, r, false);
          listsRef?.undeliverable(m, r);
        },
        finished: async (m, failed) => {
          if (!failed.length || !queueRef) return;
          await recordFailed(failedDir, queueRef, m, failed, qlog);
          if (m.authenticated && m.sender && accounts.hasUser(m.sender)) await notifySender(queueRef, m, failed, config.hostname, maildir, dataDir, qlog);
        },
      },
    });
    queueRef = queue;
    cleanups.unshift(() => queue.stop(config.shutdown_grace));
    for (const line of report) qlog.warn({ event: 'queue_recovery', detail: line }, line);
    if (recovered) qlog.info({ event: 'queue_recovered', messages: recovered }, `resuming ${recovered} queued message(s)`);
    metrics.sources.queueSize = () => queue.size;

    const store = await openStateStore(config.store, dataDir, logger.child({ component: 'store' }), { registry: metrics.registry });
    cleanups.unshift(() => store.close());
    // Held originals and why (docs/quarantine.md); closed after the listeners that add to it.
    const quarantine = startQuarantine(config, { logger, maildir, queue, accounts, store, newId: queueIdGenerator() });
    if (quarantine) cleanups.unshift(() => quarantine.stop());
    const alog = logger.child({ component: 'auth' });
    const bruteForce = new BruteForce(store, config.auth.brute_force, {
      blocked: (scope, ip, account, until) => {
        metrics.authBlocks.inc({ scope });
        alog.warn({ event: 'auth_block', scope, ip, user: account, until: new Date(until).toISOString() }, `blocked ${scope} for password guessing`);
      },
      spraying: (kind, ip, account, count) => {
        metrics.authSpraying.inc({ kind });
        alog.warn({ event: 'auth_spraying', kind, ip, user: account, count }, kind === 'accounts_from_ip' ? `password spraying: ${count} accounts tried from ${ip}` : `password spraying: ${account} tried from ${count} sources`);
      },
    });
    const dlog = logger.child({ component: 'dns' });
    const zones = ZoneSet.fromConfig(config.dns.zones, { logger: dlog });
    cleanups.unshift(() => zones.close());
    await zones.load();
    for (const z of zones.stats()) {
      if (!z.loaded) dlog.error({ event: 'zone_unavailable', zone: z.name, err: z.lastError }, `zone ${z.name} could not be loaded: its lookups score as unknown until the file is fixed`);
      else dlog.info({ event: 'zone_loaded', zone: z.name, entries: z.entries, ms: z.loadMs }, `zone ${z.name} loaded`);
    }
    const dns = createResolver(resolverOptions(config.dns, config.dns.zones.length ? [zones] : undefined));
    if (config.dns.serve) {
      const server = await startZoneServer(zones, config.dns.serve, dlog);
      cleanups.unshift(() => server.close());
      dlog.info({ event: 'zone_server', ...server.address() }, 'serving the mirrored zones over DNS');
    }
    metrics.sources.dns = () => ({ ...dns.stats() });
    logger.info({ event: 'dns', servers: dns.servers.map((s) => `${s.host}:${s.port}`) }, 'resolver ready');
    // TLS on the way out (docs/outbound-tls.md): the policy the MX client asks (MxDelivery's
    // `tls` option), and the daily TLS-RPT reports, handed to the queue like any mail of ours
    // (never authenticated: no DSN), as are the DMARC aggregate reports (docs/deliverability.md).
    const outboundTls = createOutboundTlsPolicy({
      config: config.outbound.tls, resolver: dns, dnssecValidating: config.dns.dnssec_validating, dataDir,
      logger, hostname: config.hostname,
    });
    cleanups.unshift(() => outboundTls.close());
    const newReportId = queueIdGenerator();
    const submitReport: Submit = async (envelope, message) => {
      await queue.commit({
        id: newReportId(), sender: envelope.from, meta: { origin: 'report' }, inline: [message], size: message.length, authenticated: false,
        recipients: envelope.to.map((address) => ({ address, destination: { kind: 'relay', domain: address.slice(address.lastIndexOf('@') + 1).toLowerCase() } })),
      });
    };
    outboundTls.startReportTimer(submitReport);
    // Mailing lists (docs/lists.md): their addresses accepted at RCPT, their mail read after delivery.
    const lists = startLists({ config, dataDir, state: store, queue, accounts, dns, logger, newId: newReportId });
    cleanups.unshift(() => lists.close());
    listsRef = lists;
    const resolver: RecipientResolver = lists.resolver;
    // Outbound limits and locks of authenticated senders, in the shared state store (docs/outbound.md).
    const outbound = new OutboundGuard({
      store, config: config.outbound.limits, content: config.outbound.content, queue, logger: logger.child({ component: 'outbound' }),
      registry: metrics.registry, hostname: config.hostname,
      alertTo: config.outbound.limits.alert ?? `postmaster@${config.domains[0]}`,
      alert: (to, message) => queueAlert(queue, resolver, to, message, newReportId()),
    });
    outboundRef = outbound;
    const relay = new RelayDelivery({ hostname: config.hostname, logger: logger.child({ component: 'relay' }) });
    cleanups.unshift(() => relay.close());
    // Direct delivery to the MX hosts of domains without a relay route (docs/outbound.md).
    const mx = !config.outbound.delivery.enabled ? undefined : new MxDelivery({
      hostname: config.hostname, config: config.outbound.delivery, resolver: dns, logger: logger.child({ component: 'mx' }),
      ownAddresses: mxOwnAddresses(config.listeners.map((l) => l.address)),
      // Overrides, DANE, MTA-STS, opportunistic STARTTLS; every attempt counted for TLS-RPT.
      tls: outboundTls,
    });
    if (mx) cleanups.unshift(() => mx.close());
    // Complaints, DMARC and TLS-RPT reports read from the mail delivered to the report mailboxes.
    const reports = startReportIntake({
      config, dataDir, accounts, maildir, logger, metrics, resolver: dns, submit: submitReport,
      onComplaint: (user) => void outbound.complaint(user),
      lists: lists.complaints,
    });
    cleanups.unshift(() => reports.close());
    const router = new DeliveryRouter({
      maildir,
      relay,
      mx,
      mailboxDir: (address) => lists.mailboxDir(address) ?? mailboxPath(dataDir, address),
      route: (domain) => resolver.route(domain),
      metrics,
      sign: dkimSigner(config, dataDir, logger),
      observe: {
        delivered: (m, a, c) => (reports.intake.delivered(m, a, c), lists.delivered(m, a, c)),
        leaving: (m, c) => reports.intake.leaving(m, c),
      },
    });
    const checkLog = logger.child({ component: 'checks' });
    const ownAddresses = [...new Set(config.listeners.map((l) => l.address).filter((a) => a !== '0.0.0.0' && a !== '::'))];
    const spam = createSpamEngine(config, { resolver: dns, logger: checkLog, dnsTimeoutMs: dnsBudgetMs(config, dns.servers.length) });
    cleanups.unshift(() => spam.close());
    const userPolicies = new UserPolicies(accounts, config.users.optout_files, logger.child({ component: 'users' }));
    userPolicies.start();
    cleanups.unshift(() => userPolicies.stop());
    // One clamd client for the AV check and the message model's archive inspector, so
    // antivirus.max_concurrency holds across both.
    const clamd = config.antivirus.enabled ? clamdClient(config) : undefined;
    const checks = builtinChecks({
      config, owns: (user, address) => resolver.owns(user, address), bruteForce, resolver: dns, ownAddresses, logger: checkLog, spamChecks: spam.checks, clamd,
      onDmarc: reports.onDmarc,
      avCallbacks: {
        onScan: (result, seconds) => {
          metrics.avScans.inc({ result });
          metrics.avScanSeconds.observe(seconds);
        },
        onVirus: () => metrics.avViruses.inc(),
        onUnavailable: () => metrics.avUnavailable.inc(),
        onArchiveFinding: (symbol) => metrics.archiveFindings.inc({ symbol }),
      },
    }, dns.servers.length);
    if (!config.antivirus.enabled) {
      checkLog.warn({ event: 'antivirus_disabled' }, 'antivirus is off: set antivirus.enabled and antivirus.clamd (docs/antivirus.md) to scan mail with ClamAV');
    }
    // Refused here, before any listener opens, when policy.symbols or policy.actions names
    // something no check emits (the registry needs the loaded rules and the configured lists).
    const { policy } = buildPolicy(config, [...builtinSymbols(config), ...spam.symbols]);
    for (const warning of config.warnings) logger.warn({ event: 'config_deprecated' }, warning);
    if (config.policy.observe) logger.warn({ event: 'observe_mode' }, 'policy.observe is on: policy refusals are logged as "would reject" and the mail accepted');
    const runner = new CheckRunner(checks, policy, checkLog, {
      onCheckFailure: (check) => metrics.checkFailures.inc({ check }),
    });
    // The message trace the console searches (src/trace/), kept while the console is on.
    const trace = config.console.enabled ? TraceStore.open(TraceStore.fileIn(dataDir)) : undefined;
    if (trace) cleanups.unshift(() => trace.close());
    const listeners = new SmtpListeners({
      config,
      tlsOptions: () => (tlsManager.available ? tlsManager.serverOptions() : undefined),
      resolver,
      accounts,
      runner,
      queue,
      logger,
      metrics,
      trusted: new NetworkSet(config.relay.trusted_networks),
      newId: queueIdGenerator(),
      bruteForce,
      store,
      limits: new ClientLimits(config.limits, store, config.hostname),
      spam: { users: userPolicies, autolearn: spam.autolearn },
      messageModel: messageModelOptions(config, clamd),
      outbound,
      trace: trace && traceRecorder(trace, (err) => logger.error({ event: 'trace_write_failed', err: err.message }, 'cannot record the message trace')),
      quarantine: quarantine?.session,
    });
    // Registered before start: a listener that cannot bind must not leave the ones before it
    // open (and the process alive, refusing sessions on a closed store).
    cleanups.unshift(() => listeners.stop(config.shutdown_grace));
    await listeners.start(config.listeners.filter(isSmtpListener));
    // The scanner behind spamc and rspamc (docs/integrations.md): the same content checks (and
    // Bayes, clamd, rules) as the data stage, without those that judge the SMTP client.
    const scanListeners = await startScanListeners(config.listeners, () => ({
      scanner: new MessageScanner({
        checks: checks.filter((c) => c === requiredHeaders || c.name === 'antivirus' || spam.checks.includes(c)),
        policy, observe: config.policy.observe, thresholds: config.policy.thresholds, attachments: config.attachments, modelOptions: messageModelOptions(config, clamd),
        logger: checkLog, events: { onCheckFailure: (check) => metrics.checkFailures.inc({ check }) }, users: userPolicies, bayes: spam.bayes,
      }),
      hostname: config.hostname, subjectTag: config.policy.subject_tag, maxMessageSize: config.smtp.max_message_size, logger,
      count: (listener, kind, outcome) => metrics.scanRequests.inc({ listener, kind, outcome }),
      // A bare name (spamc -u alice): the local domain that has the account, else the first
      // (where an opt-out file in alice's home directory still counts).
      userAddress: (user) => {
        if (user.includes('@')) return user.toLowerCase();
        const candidates = config.domains.map((d) => `${user}@${d}`.toLowerCase());
        return candidates.find((a) => accounts.hasUser(a)) ?? candidates[0];
      },
    }));
    cleanups.unshift(() => scanListeners.close(config.shutdown_grace));
    // Milter (docs/integrations.md): the SMTP path's own runner and policy behind Postfix or Sendmail.
    const milterListeners = await startMilterListeners(config.listeners, () => {
      const trustedNets = new NetworkSet(config.relay.trusted_networks);
      const roles = new Set(config.roles.addresses.map((r) => r.toLowerCase()));
      return {
        runner, hostname: config.hostname, thresholds: config.policy.thresholds, observe: config.policy.observe, subjectTag: config.policy.subject_tag,
        maxMessageSize: config.smtp.max_message_size, messageModel: messageModelOptions(config, clamd), logger, users: userPolicies,
        isTrusted: (address: string) => trustedNets.has(address),
        isRole: (address: string) => roles.has(address.slice(0, address.lastIndexOf('@')).toLowerCase()) || address.toLowerCase() === 'postmaster',
        count: (listener: string, kind: 'milter', outcome: string) => metrics.scanRequests.inc({ listener, kind, outcome }),
      };
    });
    cleanups.unshift(() => milterListeners.close(config.shutdown_grace));
    // Policy delegation (docs/integrations.md): Postfix asks the connect-to-RCPT checks through
    // check_policy_service, Dovecot asks and feeds the brute-force defence through its auth policy.
    const policyListeners = await startPolicyListeners(config.listeners, () => {
      const trustedNets = new NetworkSet(config.relay.trusted_networks);
      return {
        runner, bruteForce, limits: new ClientLimits(config.limits, store, config.hostname), trusted: (a) => trustedNets.has(a), logger,
        count: (listener, kind, outcome) => metrics.policyRequests.inc({ listener, kind, outcome }),
      };
    });
    cleanups.unshift(() => policyListeners.close(config.shutdown_grace));
    // Mailbox access, TLS only: IMAP and POP3 on the same Maildirs (docs/imap.md, docs/pop3.md).
    // A message moved into or out of Junk teaches Bayes what the user thinks of it.
    const mlog = logger.child({ component: 'mailbox' });
    // The console's Junk page moves through the same code and calls the same hook.
    const onJunkTrain = (e: JunkTrainEvent) => spam.learnFromUser(e.message, e.cls, e.user).catch((err) => {
      mlog.warn({ event: 'bayes_user_learn_failed', user: e.user, class: e.cls, err: (err as Error).message }, 'cannot learn from a Junk move');
    });
    const imap = !config.imap.enabled ? { addresses: [], close: async () => undefined } : await startImap({
      config: config.imap, dataDir, accounts, bruteForce, tls: tlsManager, logger, maxMessageSize: config.smtp.max_message_size,
      onJunkTrain,
    });
    cleanups.unshift(() => imap.close());
    const pop3 = await startPop3({ config: config.pop3, dataDir, accounts, bruteForce, tls: tlsManager, logger });
    cleanups.unshift(() => pop3.close(config.shutdown_grace));
    let consoleAddress: { address: string; port: number } | undefined;
    const allAddresses = () => ({
      ...listeners.addresses(),
      ...scanListeners.addresses(),
      ...policyListeners.addresses(),
      ...milterListeners.addresses(),
      ...(consoleAddress ? { console: consoleAddress } : {}),
      ...Object.fromEntries([...imap.addresses, ...pop3.addresses].map((a) => [a.name, { address: a.address, port: a.port }])),
    });
    // Our own addresses against the DNS lists, now and then (docs/audit.md "self-check").
    const selfWatch = new SelfWatch({
      config: config.self_check, hostname: config.hostname, dnsbl: config.dnsbl,
      dynamicPatterns: config.rdns.dynamic_patterns, resolver: dns,
      logger: logger.child({ component: 'self-check' }), registry: metrics.registry,
      report: async (subject, body) => {
        const msg = reportMessage({ hostname: config.hostname, to: config.roles.mailbox, subject, body });
        await maildir.deliver(mailboxPath(dataDir, config.roles.mailbox), 'INBOX', { size: msg.length, stream: () => Readable.from([msg]) });
      },
    });
    selfWatch.start();
    cleanups.unshift(() => selfWatch.stop());
    const expiryTimer = setInterval(() => tlsManager.checkExpiry(), 86_400_000).unref();
    cleanups.unshift(() => clearInterval(expiryTimer));

    let metricsServer: http.Server | undefined;
    if (config.metrics.enabled) {
      metricsServer = await serveMetrics(metrics, config.metrics.address, config.metrics.port);
      cleanups.unshift(() => new Promise<void>((r) => metricsServer!.close(() => r())));
    }
    const control: net.Server = await serveControl(dataDir, async (req) => {
      const id = String(req.args?.id ?? '');
      switch (req.cmd) {
        case 'queue.list': return queue.list().map(describeQueued);
        case 'queue.show': {
          const m = queue.get(id);
          if (!m) throw new Error(`no message ${id} in the queue`);
          return describeQueued(m);
        }
        case 'queue.flush':
          // Like postqueue -f, which also clears Postfix's dead-destination cache.
          relay.forgetDownHosts();
          mx?.forgetDownHosts();
          return { scheduled: queue.flush() };
        case 'queue.delete': return { result: await queue.delete(id) };
        case 'queue.hold': case 'queue.release': case 'user.unlock': case 'user.locks':
          return outboundControl(req, queue, outbound);
        case 'tls-rpt.send': return outboundTls.sendReports(submitReport, typeof req.args?.date === 'string' ? req.args.date : undefined);
        case 'dmarc.send': return reports.sendDmarc(typeof req.args?.date === 'string' ? req.args.date : undefined);
        case 'status': return { pid: process.pid, queue: queue.size, sessions: listeners.sessionCount, listeners: allAddresses() };
        default:
          if (req.cmd.startsWith('list.')) return lists.command(req.cmd.slice('list.'.length), req.args);
          if (req.cmd.startsWith('quarantine.')) {
            if (!quarantine) throw new Error('the quarantine is off (quarantine.enabled: false)');
            return quarantine.command(req.cmd.slice('quarantine.'.length), req.args);
          }
          throw new Error(`unknown command ${req.cmd}`);
      }
    });
    cleanups.unshift(() => new Promise<void>((r) => control.close(() => r())));
    // The web console, HTTPS only (docs/console.md): not started without a certificate.
    if (trace && !tlsManager.available) logger.warn({ event: 'console_no_tls' }, 'the console is not started: it needs TLS (tls.certificates or tls.self_signed)');
    else if (trace) {
      const web = await startConsole({
        config: config.console, thresholds: config.policy.thresholds, tls: tlsManager, accounts, bruteForce, trace, logger, metrics,
        queue: {
          list: () => queue.list().map(describeQueued), flush: () => (relay.forgetDownHosts(), mx?.forgetDownHosts(), queue.flush()), delete: (id) => queue.delete(id),
          // The same control commands as `portcullis queue hold|release` and `user locks|unlock`.
          hold: async (id) => ((await outboundControl({ cmd: 'queue.hold', args: { id } }, queue, outbound)) as { held: string[] }).held,
          release: async (id) => ((await outboundControl({ cmd: 'queue.release', args: { id } }, queue, outbound)) as { released: string[] }).released,
          locks: async () => ((await outboundControl({ cmd: 'user.locks' }, queue, outbound)) as { locks: OutboundLock[] }).locks,
          unlock: async (user) => ((await outboundControl({ cmd: 'user.unlock', args: { user } }, queue, outbound)) as { unlocked: boolean }).unlocked,
        },
        reports: reports.store,
        junk: { dataDir, onJunkTrain },
        lists: lists.service,
        quarantine: quarantine && { store: quarantine.quarantine, links: quarantine.links, learn: config.bayes.enabled ? (raw, cls, user) => spam.learnFromUser(raw, cls, user) : undefined },
      });
      cleanups.unshift(() => web.close());
      consoleAddress = web.address;
    }
    // Files left in Maildir tmp/ folders by deliveries cut short (a kill, a full disk): swept
    // once before the queue delivers again, then every maildir.tmp_sweep_interval.
    const sweeper = startTmpSweeper({
      mailRoot: path.join(dataDir, 'mail'), maxAgeMs: config.maildir.tmp_max_age, intervalMs: config.maildir.tmp_sweep_interval,
      logger: logger.child({ component: 'delivery' }),
    });
    cleanups.unshift(() => sweeper.stop());
    await sweeper.run();
    queue.start(router);

    logger.info({ event: 'ready', listeners: allAddresses(), domains: config.domains, data_dir: dataDir, tls: tlsManager.describe(), queued: queue.size }, 'Portcullis ready');
    let stopped: Promise<void> | undefined;
    return {
      config,
      metrics,
      queue,
      quarantine,
      addresses: () => allAddresses(),
      async reload() {
        await tlsManager.reload();
        listeners.refreshTls();
      },
      stop() {
        stopped ??= (async () => {
          logger.info({ event: 'stopping' }, 'stopping: finishing sessions and deliveries in flight');
          for (const c of cleanups) await c();
          logger.info({ event: 'stopped' }, 'stopped');
        })();
        return stopped;
      },
    };
  } catch (err) {
    for (const c of cleanups) await Promise.resolve(c()).catch(() => undefined);
    throw err;
  }
}

/** Keeps an undeliverable message and why, for the administrator (nothing is bounced). */
async function recordFailed(dir: string, queue: Queue, m: QueuedMessage, failed: QueuedRecipient[], log: Logger): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await pipeline(queue.content(m).stream(), fs.createWriteStream(path.join(dir, `${m.id}.eml`), { mode: 0o600 }));
    const info = { ...describeQueued(m), failed: failed.map((r) => ({ address: r.address, reply: r.lastReply })) };
    await fsp.writeFile(path.join(dir, `${m.id}.json`), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  } catch (err) {
    log.error({ event: 'failed_record_error', id: m.id, err: (err as Error).message }, 'cannot record undeliverable message');
  }
}

/** A failure report for a sender who logged in, into its own INBOX (see queue/dsn.ts). */
async function notifySender(queue: Queue, m: QueuedMessage, failed: QueuedRecipient[], hostname: string, maildir: MaildirDelivery, dataDir: string, log: Logger): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of queue.content(m).stream()) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size > 64 * 1024) break;
    }
    const dsn = buildDsn({
      hostname, id: m.id, sender: m.sender, arrived: new Date(m.arrived),
      failed: failed.map((r) => ({ address: r.address, reply: r.lastReply ?? 'failed' })), originalHeaders: headerSection(Buffer.concat(chunks)),
    });
    await maildir.deliver(mailboxPath(dataDir, m.sender), 'INBOX', { size: dsn.length, stream: () => Readable.from([dsn]) });
    log.info({ event: 'dsn', id: m.id, to: m.sender }, 'failure report delivered to the (authenticated) sender');
  } catch (err) {
    log.error({ event: 'dsn_failed', id: m.id, err: (err as Error).message }, 'cannot deliver failure report');
  }
}
