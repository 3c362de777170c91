#!/usr/bin/env node
// The `portcullis` command: a thin front end over the same modules the gateway uses.
import './threadpool.js';
// Commands load what they use when they run (dynamic imports below): `portcullis user add`
// should not compile the whole gateway first — loading every module cost ≈1.5 s of CPU per
// invocation, paid by every script and test that calls the CLI.
import { parseArgs } from 'node:util';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { loadConfig, ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { AccountStore } from '../auth/accounts.js';
import { callControl } from '../control/socket.js';
import { silentLogger } from '../log.js';
import type { QueuedView } from '../queue/describe.js';
import { readPassword } from './password-input.js';

const USAGE = `usage: portcullis <command> [options]

  serve [--config FILE]                 run the gateway in the foreground
  config check FILE                     validate a configuration file
  user add ADDRESS [--password-stdin]   create a local user (asks for the password)
  user passwd ADDRESS [--password-stdin]
  user del ADDRESS
  user list
  user set ADDRESS KEY=VALUE...         the user's spam settings: spam-filter=on|off, tag=N, junk=N,
                                        reject=N|never (…=default), allow+=/allow-=, block+=/block-= ADDRESS|@DOMAIN
  user show ADDRESS                     the user's spam settings
  user unlock USER|IP                   lift an outbound lock (docs/outbound.md "Limits and holds")
  user locks [--json]                   senders whose outbound mail is suspended
  alias add ADDRESS TARGET...           deliver ADDRESS to TARGETs (local users or external)
  alias del ADDRESS
  alias list
  audit DOMAIN [--host H] [--json] [--html FILE] ...
                                        scrutinise a mail domain from outside (docs/audit.md)
  scan [--json] [--rewrite DIR] PATH...  what the content checks decide (files, directories, mbox, tarballs)
  train --spam PATH --ham PATH [--forget] [--json]
                                        teach Bayes (directories, mbox files, tarballs; docs/bayes.md)
  rules check [--json] [PATH...]        load content rules (SpamAssassin .cf) and list what cannot be used
  check-uri URL|DOMAIN... [--json]      URI lists and local domain lists: what the URI check would say
  symbols [--json] [--markdown]         every symbol of the configuration: group, weight, action, description
  check-ip IP [--json]                  what the gateway would decide about a client at connect
  check-spf IP SENDER HELO [--json]     the SPF results for a client, and what the gateway would do
  auth status USER|IP                   failed logins, blocks and known networks
  auth unblock USER|IP                  lift blocks and failure counts
  store migrate --to URL|redis|sqlite [--json]
                                        copy counters, blocks, rates and Bayes to Redis or back (docs/store.md)
  dkim keygen DOMAIN [--selector S] [--type rsa|ed25519]
                                        make a DKIM key, sign DOMAIN's mail, print the TXT record
  dkim list [DOMAIN] [--json]           keys: domain, selector, type, created, active, record
  dkim rotate DOMAIN [--type T]         a new dated key signs; the old one kept until removed
  dkim remove DOMAIN SELECTOR
  policy port25 --authorized HOST... [--networks CIDR...] [--verify]
                                        nftables rules: mail ports only to/from the mail servers
  dns ptr-plan CIDR --pattern P [--forward]
                                        generic PTR names for a dynamic pool (zone-file form)
  queue list [--json]                   messages waiting for delivery
  queue show ID
  queue flush                           retry every deferred message now
  queue delete ID
  queue hold ID|--user U|--client IP    put messages on hold (kept, not delivered)
  queue release ID|--user U|--client IP release held messages for delivery
  quarantine list|show|release|delete|stats|digest [ID] [--json] [--recipient A] [--reason R]
                                        what is held and why; release delivers the original (docs/quarantine.md)
  tls-rpt send [--date YYYY-MM-DD] [--json]
                                        send a day's TLS-RPT reports now (docs/outbound-tls.md)
  complaints list [--user U] [--since 7d] [--json]
                                        complaint reports (ARF) about our mail, traced to the user
  complaints show ID
  reports list [--kind dmarc|tlsrpt|unparsed] [--json]
                                        DMARC and TLS-RPT reports received (docs/deliverability.md)
  reports show ID
  reports send-dmarc [--date YYYY-MM-DD]
                                        send a day's DMARC aggregate reports now (reports.dmarc_out)
  list create|delete|show|set|members|subscribe|unsubscribe|import|held|approve|discard LIST …
                                        mailing lists with confirmed opt-in (docs/lists.md)

Every command takes --config FILE (or PORTCULLIS_CONFIG) to find the data directory;
without one, the embedded defaults apply (data in ./data or PORTCULLIS_DATA_DIR).`;

class UsageError extends Error {}

function config(file: string | undefined): Config {
  return loadConfig(file ?? process.env.PORTCULLIS_CONFIG);
}

async function main(argv: string[]): Promise<number> {
  // The audit has options of its own (--host, --port, --dkim…): it parses its arguments itself.
  if (argv[0] === 'audit') return (await import('./audit.js')).auditCli(argv.slice(1));
  // So do these: each command's module owns its options; --config is taken out here.
  if (argv[0] === 'tls-rpt') return withConfig(argv.slice(1), async (args, cfg) => (await import('./tls-rpt.js')).tlsRptCommand(args, cfg));
  if (argv[0] === 'complaints') return withConfig(argv.slice(1), async (args, cfg) => (await import('./complaints.js')).complaintsCommand(args, cfg));
  if (argv[0] === 'reports') return withConfig(argv.slice(1), async (args, cfg) => (await import('./complaints.js')).reportsCommand(args, cfg));
  if (argv[0] === 'train') return withConfig(argv.slice(1), async (args, cfg) => (await import('./train.js')).trainCommand(args, cfg));
  if (argv[0] === 'store') return withConfig(argv.slice(1), async (args, cfg) => (await import('./store-migrate.js')).storeCommand(args, cfg));
  if (argv[0] === 'rules') return withConfig(argv.slice(1), async (args, cfg) => (await import('./rules.js')).rulesCommand(args, cfg));
  if (argv[0] === 'check-uri') return withConfig(argv.slice(1), async (args, cfg) => (await import('./check-uri.js')).checkUriCommand(args, cfg));
  if (argv[0] === 'dkim') return withConfig(argv.slice(1), async (args, cfg) => (await import('./dkim.js')).dkimCommand(args, cfg));
  if (argv[0] === 'policy' && argv[1] === 'port25') return withConfig(argv.slice(2), async (args, cfg) => (await import('./port25.js')).port25Command(args, cfg));
  if (argv[0] === 'dns' && argv[1] === 'ptr-plan') return withConfig(argv.slice(2), async (args) => (await import('./ptr-plan.js')).ptrPlanCommand(args));
  if (argv[0] === 'queue' && (argv[1] === 'hold' || argv[1] === 'release')) return withConfig(argv.slice(2), async (args, cfg) => (await import('./queue-hold.js')).queueHoldCommand(argv[1] as 'hold' | 'release', args, cfg));
  if (argv[0] === 'user' && (argv[1] === 'unlock' || argv[1] === 'locks')) return withConfig(argv.slice(2), async (args, cfg) => (await import('./queue-hold.js')).userLockCommand(argv[1] as 'unlock' | 'locks', args, cfg));
  if (argv[0] === 'list') return withConfig(argv.slice(1), async (args, cfg) => (await import('./list.js')).listCommand(args, cfg));
  if (argv[0] === 'quarantine') return withConfig(argv.slice(1), async (args, cfg) => (await import('./quarantine.js')).quarantineCommand(args, cfg));
  if (argv[0] === 'symbols') return withConfig(argv.slice(1), async (args, cfg, file) => (await import('./symbols.js')).symbolsCommand(args, cfg, file));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
      rewrite: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, ...rest] = positionals;
  if (values.help || !cmd || cmd === 'help') {
    console.log(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  switch (cmd) {
    case 'serve':
      return serve(values.config);
    case 'config':
      if (sub !== 'check' || rest.length !== 1) throw new UsageError('usage: portcullis config check FILE');
      await checkConfig(rest[0]!);
      return 0;
    case 'user':
      if (sub === 'set' || sub === 'show') return userSettings(sub, rest, values.config, !!values.json);
      return user(sub, rest, values.config, !!values['password-stdin']);
    case 'alias':
      return alias(sub, rest, values.config);
    case 'queue':
      return queue(sub, rest, values.config, !!values.json);
    case 'auth':
      return auth(sub, rest, values.config, !!values.json);
    case 'scan': {
      const paths = [sub, ...rest].filter((f): f is string => !!f);
      if (!paths.length) throw new UsageError('usage: portcullis scan [--json] [--rewrite DIR] PATH...');
      for (const f of paths) if (!fs.existsSync(f)) throw new UsageError(`scan: ${f}: no such file or directory`);
      const { scanPaths, scanExitStatus, describeScan, scanProblems } = await import('./scan.js');
      const out = await scanPaths(config(values.config), paths, { rewriteDir: values.rewrite });
      if (values.json) console.log(JSON.stringify(out.results, null, 2));
      else if (out.results.length) console.log(describeScan(out));
      for (const line of scanProblems(out)) console.error(line);
      return scanExitStatus(out);
    }
    case 'check-spf':
      if (!sub || rest.length !== 2) throw new UsageError('usage: portcullis check-spf IP SENDER HELO [--json]');
      return checkSpfCommand(sub, rest[0]!, rest[1]!, values.config, !!values.json);
    case 'check-ip':
      if (!sub || rest.length) throw new UsageError('usage: portcullis check-ip IP [--json]');
      return checkIpCommand(sub, values.config, !!values.json);
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
  }
}

/** Takes `--config FILE` / `-c FILE` / `--config=FILE` out of `argv` and loads the configuration. */
async function withConfig(argv: string[], run: (args: string[], cfg: Config, file?: string) => Promise<number>): Promise<number> {
  const rest: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      file = argv[++i];
      if (!file) throw new UsageError('--config needs a FILE');
    } else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else rest.push(a);
  }
  return run(rest, config(file), file ?? process.env.PORTCULLIS_CONFIG);
}

/** Exit status 0: the client would be accepted; 1: refused (at RCPT) or tempfailed. */
async function checkIpCommand(ip: string, file: string | undefined, json: boolean): Promise<number> {
  if (!net.isIP(ip)) throw new UsageError(`check-ip: "${ip}" is not an IP address`);
  const cfg = config(file);
  const { ZoneSet } = await import('../dns/zones/zone-mirror.js');
  const { createResolver, resolverOptions } = await import('../dns/resolver.js');
  const { checkIp, describeIpVerdict } = await import('./check-ip.js');
  // The local mirrors as the gateway loads them (no watching: one answer and done).
  const zones = ZoneSet.fromConfig(cfg.dns.zones.map((z) => ({ ...z })), { logger: silentLogger(), watch: false });
  await zones.load();
  const dns = createResolver(resolverOptions(cfg.dns, cfg.dns.zones.length ? [zones] : undefined));
  const verdict = await checkIp(cfg, dns, dns.servers.length, ip);
  zones.close();
  console.log(json ? JSON.stringify(verdict, null, 2) : describeIpVerdict(verdict, cfg));
  return verdict.refused ? 1 : 0;
}

/** Exit status 0: the sender would be accepted; 1: refused at RCPT (SPF_FAIL with its default action, reject). */
async function checkSpfCommand(ip: string, sender: string, helo: string, file: string | undefined, json: boolean): Promise<number> {
  if (!net.isIP(ip)) throw new UsageError(`check-spf: "${ip}" is not an IP address`);
  const cfg = config(file);
  const { createResolver, resolverOptions } = await import('../dns/resolver.js');
  const { explainSpf } = await import('./check-spf.js');
  const dns = createResolver(resolverOptions(cfg.dns));
  const report = await explainSpf(dns, { ip, sender, helo, hostname: cfg.hostname }, cfg);
  console.log(json ? JSON.stringify(report.json, null, 2) : report.text);
  return report.json.refused ? 1 : 0;
}

/**
 * `config check FILE`: the schema, then every policy.symbols / policy.actions key against the
 * symbols this configuration's checks can emit (rules loaded, lists compiled), as `serve` does.
 * Deprecated keys are mapped and named on stderr with their new form.
 */
async function checkConfig(file: string): Promise<void> {
  const cfg = config(file);
  const { buildPolicy } = await import('../gateway/policy.js');
  const { builtinSymbols } = await import('../gateway/checks.js');
  const { spamSymbols } = await import('../checks/spam-engine.js');
  buildPolicy(cfg, [...builtinSymbols(cfg), ...spamSymbols(cfg)], undefined, file);
  for (const w of cfg.warnings) console.error(`${file}: warning: ${w}`);
  console.log(`${file}: configuration is valid`);
}

async function serve(file: string | undefined): Promise<number> {
  const cfg = config(file);
  const { createLogger } = await import('../log.js');
  const { startGateway } = await import('../gateway/gateway.js');
  const logger = createLogger(cfg.log.level);
  if (!file && !process.env.PORTCULLIS_CONFIG) {
    logger.info({ event: 'defaults' }, 'no --config given: running on the embedded defaults (loopback listeners)');
  }
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(cfg, logger);
  } catch (err) {
    // startGateway has closed what it opened; should anything still hold the event loop,
    // a gateway that failed to start must not linger half-open.
    setTimeout(() => process.exit(1), 2000).unref();
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'signal', signal }, `received ${signal}`);
    gateway.stop().then(
      () => logger.flush(() => process.exit(0)),
      (err) => {
        logger.error({ event: 'stop_failed', err: (err as Error).message }, 'stop failed');
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    gateway.reload().then(
      () => logger.info({ event: 'reloaded' }, 'TLS certificates reloaded'),
      (err) => logger.error({ event: 'reload_failed', err: (err as Error).message }, 'reload failed; keeping the old certificates'),
    );
  });
  process.on('uncaughtException', (err) => {
    // Nothing acknowledged is lost by dying here: "250" is only sent after the queue fsync.
    logger.fatal({ event: 'crash', err: err.stack }, 'uncaught exception');
    logger.flush(() => process.exit(70));
  });
  return new Promise<number>(() => undefined); // runs until a signal
}

async function openAccounts(file: string | undefined): Promise<AccountStore> {
  const cfg = config(file);
  // The node's accounts.db, or the accounts every node shares in Redis (store.backend: redis).
  const { openAccountStore } = await import('../auth/accounts-open.js');
  return openAccountStore(cfg.store, cfg.data_dir, { requireConnection: true });
}

async function user(sub: string | undefined, args: string[], file: string | undefined, fromStdin: boolean): Promise<number> {
  const store = await openAccounts(file);
  try {
    switch (sub) {
      case 'add':
      case 'passwd': {
        if (args.length !== 1) throw new UsageError(`usage: portcullis user ${sub} ADDRESS [--password-stdin]`);
        const password = await readPassword(fromStdin);
        if (sub === 'add') await store.addUser(args[0]!, password);
        else await store.setPassword(args[0]!, password);
        console.log(sub === 'add' ? `user ${args[0]} added` : `password of ${args[0]} changed`);
        return 0;
      }
      case 'del':
        if (args.length !== 1) throw new UsageError('usage: portcullis user del ADDRESS');
        await store.deleteUser(args[0]!);
        console.log(`user ${args[0]} deleted (the mailbox is kept)`);
        return 0;
      case 'list':
        for (const u of store.listUsers()) console.log(`${u.address}\t${u.created}`);
        return 0;
      default:
        throw new UsageError('usage: portcullis user add|del|list|passwd ...');
    }
  } finally {
    store.close();
  }
}

async function userSettings(sub: 'set' | 'show', args: string[], file: string | undefined, json: boolean): Promise<number> {
  if (args.length < (sub === 'set' ? 2 : 1) || (sub === 'show' && args.length !== 1)) {
    throw new UsageError(sub === 'set' ? 'usage: portcullis user set ADDRESS KEY=VALUE...' : 'usage: portcullis user show ADDRESS [--json]');
  }
  const cfg = config(file);
  const store = await openAccounts(file);
  const { UserPolicies } = await import('../pipeline/user-policies.js');
  const { applyAssignments, describeSettings, DEFAULT_SETTINGS, SettingsError, userSettingsSchema } = await import('../pipeline/user-settings.js');
  try {
    const address = args[0]!;
    if (!store.hasUser(address)) throw new UsageError(`user ${address}: no such local user`);
    const policies = new UserPolicies(store, cfg.users.optout_files);
    policies.start();
    const stored = store.getSettingsJson(address);
    let settings = stored === undefined ? DEFAULT_SETTINGS : userSettingsSchema.parse(JSON.parse(stored));
    if (sub === 'set') {
      try {
        settings = applyAssignments(settings, args.slice(1));
      } catch (err) {
        if (err instanceof SettingsError) throw new UsageError(`user set: ${err.message}`);
        throw err;
      }
      await store.putSettingsJson(address, JSON.stringify(settings));
    }
    if (json) console.log(JSON.stringify({ user: address, ...settings, optout_file: policies.hasOptOutFile(address) }, null, 2));
    else console.log(describeSettings(address, settings, cfg.policy.thresholds, policies.hasOptOutFile(address)));
    policies.stop();
    return 0;
  } finally {
    store.close();
  }
}

async function alias(sub: string | undefined, args: string[], file: string | undefined): Promise<number> {
  const store = await openAccounts(file);
  try {
    switch (sub) {
      case 'add':
        if (args.length < 2) throw new UsageError('usage: portcullis alias add ADDRESS TARGET...');
        await store.addAlias(args[0]!, args.slice(1));
        console.log(`alias ${args[0]} → ${args.slice(1).join(', ')}`);
        return 0;
      case 'del':
        if (args.length !== 1) throw new UsageError('usage: portcullis alias del ADDRESS');
        await store.deleteAlias(args[0]!);
        console.log(`alias ${args[0]} deleted`);
        return 0;
      case 'list':
        for (const a of store.listAliases()) console.log(`${a.address}\t${a.targets.join(', ')}`);
        return 0;
      default:
        throw new UsageError('usage: portcullis alias add|del|list ...');
    }
  } finally {
    store.close();
  }
}

async function auth(sub: string | undefined, args: string[], file: string | undefined, json: boolean): Promise<number> {
  if ((sub !== 'status' && sub !== 'unblock') || args.length !== 1) throw new UsageError('usage: portcullis auth status|unblock USER|IP');
  const cfg = config(file);
  fs.mkdirSync(cfg.data_dir, { recursive: true, mode: 0o700 });
  const { openStateStore } = await import('../store/open.js');
  const { BruteForce } = await import('../auth/brute-force.js');
  const store = await openStateStore(cfg.store, cfg.data_dir, silentLogger(), { fallback: false });
  try {
    const bf = new BruteForce(store, cfg.auth.brute_force);
    if (sub === 'unblock') {
      console.log(`removed ${await bf.unblock(args[0]!)} record(s) for ${args[0]}`);
      return 0;
    }
    const rows = await bf.status(args[0]!);
    if (json) console.log(JSON.stringify(rows, null, 2));
    else if (!rows.length) console.log(`nothing recorded for ${args[0]}`);
    else {
      const what: Record<string, string> = { f: 'failures', b: 'BLOCKED until', s: 'tried', k: 'known network', a: 'alerted' };
      for (const r of rows) {
        const [, kind, scope, ...rest] = r.key.split(':');
        const value = kind === 'b' ? new Date(Number(r.value)).toISOString() : r.value;
        console.log(`${(what[kind!] ?? kind!).padEnd(14)} ${scope!.padEnd(5)} ${rest.join(':').padEnd(40)} ${value}${r.expiresAt ? `  (expires ${new Date(r.expiresAt).toISOString()})` : ''}`);
      }
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function queue(sub: string | undefined, args: string[], file: string | undefined, json: boolean): Promise<number> {
  const cfg = config(file);
  const id = args[0];
  if ((sub === 'show' || sub === 'delete') && !id) throw new UsageError(`usage: portcullis queue ${sub} ID`);
  if (!['list', 'show', 'flush', 'delete'].includes(sub ?? '')) throw new UsageError('usage: portcullis queue list|show|flush|delete ...');
  const online = await callControl(cfg.data_dir, { cmd: `queue.${sub}`, args: { id } });
  let result: unknown;
  if (online) {
    if (!online.ok) throw new Error(online.error ?? 'the gateway refused the request');
    result = online.result;
  } else {
    if (sub === 'flush') throw new Error('the gateway is not running; it retries the whole queue when it starts');
    result = await offlineQueue(cfg, sub!, id);
  }
  printQueue(sub!, result, json);
  return 0;
}

/** Reads (and for delete, writes) the queue directly while no gateway runs, under its lock. */
async function offlineQueue(cfg: Config, sub: string, id: string | undefined): Promise<unknown> {
  if (!fs.existsSync(path.join(cfg.data_dir, 'queue'))) return sub === 'list' ? [] : Promise.reject(new Error(`no message ${id} in the queue`));
  const { acquireLock } = await import('../gateway/gateway.js');
  const { Queue } = await import('../queue/queue.js');
  const { describeQueued } = await import('../queue/describe.js');
  const unlock = acquireLock(cfg.data_dir);
  const { queue: q } = await Queue.open({
    dir: path.join(cfg.data_dir, 'queue'), fsync: cfg.queue.fsync, segmentSize: cfg.queue.segment_size, concurrency: 1,
    retryInitial: cfg.queue.retry_initial, retryMax: cfg.queue.retry_max, lifetime: cfg.queue.lifetime, logger: silentLogger(),
  });
  try {
    if (sub === 'list') return q.list().map(describeQueued);
    const m = q.get(id!);
    if (!m) throw new Error(`no message ${id} in the queue`);
    if (sub === 'show') return describeQueued(m);
    return { result: await q.delete(id!) };
  } finally {
    await q.stop(0);
    unlock();
  }
}

function printQueue(sub: string, result: unknown, json: boolean): void {
  if (json || sub === 'show') {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  if (sub === 'list') {
    const list = result as QueuedView[];
    if (!list.length) {
      console.log('Mail queue is empty');
      return;
    }
    for (const m of list) {
      console.log(`${m.id}  ${String(m.size).padStart(8)}  ${m.arrived}  <${m.sender}>${m.held ? `  HELD: ${m.held.reason}` : ''}`);
      for (const r of m.recipients) console.log(`    ${r.status.padEnd(9)} ${r.address}${r.last_reply ? `  (${r.last_reply})` : ''}`);
    }
    console.log(`-- ${list.length} message(s)`);
  } else if (sub === 'flush') console.log(`scheduled ${(result as { scheduled: number }).scheduled} deferred message(s) for delivery now`);
  else if (sub === 'delete') {
    const r = (result as { result: string }).result;
    if (r !== 'deleted') throw new Error(r === 'busy' ? 'message is being delivered right now; try again' : 'no such message');
    console.log('deleted');
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else if (err instanceof UsageError) console.error(err.message);
    else console.error(`portcullis: ${(err as Error).message}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
