// The mailing lists of a running gateway (docs/lists.md). Mail for a list's addresses is
// accepted at RCPT like mail for a mailbox (ListAwareResolver), runs the whole pipeline, and is
// delivered durably into a spool Maildir per address under data/lists/spool; the router tells
// us of each delivery (RouterDeps.observe) and the list engine reads it from there, then
// removes it. What is left in the spool after a crash is read at the next start (as a message
// of unknown sender: posts are held, requests not answered). The list's own mail goes into the
// outbound queue, DKIM-signed (and ARC-sealed when allowed) with the list domain's key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Resolver } from '../dns/types.js';
import type { StateStore } from '../store/store.js';
import type { AccountStore } from '../auth/accounts.js';
import type { Address } from '../smtp/address.js';
import { RecipientResolver, type ClientStanding, type Resolution } from '../smtp/recipients.js';
import type { Destination, Queue, QueuedMessage } from '../queue/queue.js';
import type { Content } from '../delivery/types.js';
import { DkimKeyStore } from '../delivery/dkim/keys.js';
import { keysFor, signatures } from '../delivery/dkim/sign.js';
import { arcSeal, sealDecision } from '../delivery/dkim/arc-seal.js';
import { ListStore, ListError, listsFile, parseSettings, type List } from '../lists/store.js';
import { ListTokens, TokenError, tokenKey } from '../lists/tokens.js';
import { listTarget, type ListTarget } from '../lists/addresses.js';
import { ListService, type Arrival, type AuthorProof } from '../lists/service.js';
import { parseMailboxPath } from '../smtp/address.js';
import type { ListComplaints } from '../reports/intake.js';

/** Headers signed on list mail: the configured ones and RFC 8058's List-Unsubscribe-Post. */
const EXTRA_SIGNED = ['list-unsubscribe-post', 'precedence'];

export interface RunningLists {
  readonly service: ListService;
  /** The recipient decision with the list addresses accepted (given to the SMTP listeners). */
  readonly resolver: RecipientResolver;
  /** The spool Maildir of a list address; undefined for any other mailbox. */
  mailboxDir(mailbox: string): string | undefined;
  delivered(msg: QueuedMessage, address: string, content: Content): void;
  /** The queue gave up on a recipient (Queue events.failed): a list copy counts as a hard bounce. */
  undeliverable(msg: QueuedMessage, recipient: { address: string; lastReply?: string }): void;
  /** Complaints about list copies, for the reports intake: the list, the member, its suppression. */
  readonly complaints: ListComplaints;
  /** `portcullis list …` through the control socket. */
  command(cmd: string, args: Record<string, unknown> | undefined): Promise<unknown>;
  close(): Promise<void>;
}

class ListAwareResolver extends RecipientResolver {
  constructor(config: Config, accounts: AccountStore, private readonly target: (a: Address) => ListTarget | undefined) {
    super(config, accounts);
  }

  override resolve(addr: Address, standing: ClientStanding): Resolution {
    if (!addr.literal && !addr.quoted && this.isLocalDomain(addr.domain)) {
      const t = this.target(addr);
      if (t) {
        const address = `${addr.local.toLowerCase()}@${addr.domain}`;
        // Not a role: the spam policy applies, and a post it puts in Junk is held for moderation.
        return { kind: 'local', address, mailboxes: [address], external: [], role: false };
      }
    }
    return super.resolve(addr, standing);
  }
}

export function startLists(o: {
  config: Config; dataDir: string; state: StateStore; queue: Queue; accounts: AccountStore; dns: Resolver; logger: Logger; newId: () => string;
}): RunningLists {
  const { config, dataDir, queue } = o;
  const logger = o.logger.child({ component: 'lists' });
  const store = ListStore.open(listsFile(dataDir));
  const tokens = new ListTokens(tokenKey(dataDir), o.state);
  const spool = path.join(dataDir, 'lists', 'spool');
  fs.mkdirSync(spool, { recursive: true, mode: 0o700 });
  const enabled = config.lists.enabled;
  const targetOf = (local: string, domain: string) => (enabled ? listTarget(local, domain, (a) => !!store.get(a)) : undefined);
  const resolver = new ListAwareResolver(config, o.accounts, (a) => targetOf(a.local, a.domain));
  const keys = new DkimKeyStore(dataDir);
  let warnedNoKey = false;

  const submit = async (envelope: { from: string; to: string[] }, message: Buffer) => {
    const recipients: { address: string; destination: Destination }[] = [];
    for (const to of envelope.to) {
      const res = resolver.resolve(parseMailboxPath(to), { authenticated: true, trusted: true });
      if (res.kind === 'reject') throw new Error(`${to}: ${res.reply.text}`);
      if (res.kind === 'relay') recipients.push({ address: res.address, destination: { kind: 'relay', domain: res.domain } });
      else {
        for (const m of res.mailboxes) recipients.push({ address: m, destination: { kind: 'local', mailbox: m, folder: 'INBOX' } });
        for (const e of res.external) recipients.push({ address: e, destination: { kind: 'relay', domain: e.slice(e.lastIndexOf('@') + 1) } });
      }
    }
    if (!recipients.length) return;
    // client 'list': not a trusted client, so the router's signer leaves the copy as we signed it.
    await queue.commit({ id: o.newId(), sender: envelope.from, recipients, meta: { origin: 'list', client: 'list' }, inline: [message], size: message.length, authenticated: false });
  };

  const sign = async (copy: Buffer, listDomain: string, postHead: Buffer): Promise<Buffer> => {
    const usable = keysFor(listDomain, keys.list(listDomain).filter((k) => k.active));
    if (!usable.length) {
      if (!warnedNoKey) logger.warn({ event: 'list_unsigned', domain: listDomain }, `no DKIM key for ${listDomain}: list mail leaves unsigned (portcullis dkim keygen ${listDomain})`);
      warnedNoKey = true;
      return copy;
    }
    try {
      const dkimConfig = { ...config.outbound.dkim, headers: [...new Set([...config.outbound.dkim.headers, ...EXTRA_SIGNED])] };
      let signed = Buffer.concat([Buffer.from(await signatures(copy, usable, dkimConfig, new Date()), 'latin1'), copy]);
      const decision = postHead.length ? sealDecision(postHead, config.hostname) : undefined;
      const rsa = usable.find((k) => k.type === 'rsa');
      if (config.outbound.dkim.arc_seal && decision?.seal && rsa) signed = Buffer.concat([await arcSeal(signed, rsa, decision), signed]);
      return signed;
    } catch (err) {
      logger.error({ event: 'list_sign_failed', domain: listDomain, err: (err as Error).message }, 'cannot DKIM-sign list mail: sent unsigned');
      return copy;
    }
  };

  /** Why a new list cannot have this address (not ours, or a user, alias or role address already). */
  const freeAddress = (list: string): string | undefined => {
    const at = list.lastIndexOf('@');
    const local = list.slice(0, at);
    const domain = list.slice(at + 1);
    if (at < 1 || !config.domains.includes(domain)) return `${list}: a list lives on a local domain (domains: ${config.domains.join(', ')})`;
    if (config.roles.addresses.map((r) => r.toLowerCase()).includes(local)) return `${list}: ${local}@ is a role address`;
    for (const a of [list, `${local}-request@${domain}`, `${local}-owner@${domain}`, `${local}-bounces@${domain}`]) {
      const exp = o.accounts.expand(a, (d) => config.domains.includes(d));
      if (exp && (exp.users.length || exp.external.length)) return `${list}: ${a} is a user or an alias already`;
    }
    return undefined;
  };
  const service = new ListService({
    store, tokens, state: o.state, config: config.lists, resolver: o.dns, logger, hostname: config.hostname,
    webUrl: config.lists.web_url ?? `https://${config.hostname}:${config.console.port}`, submit, sign,
    owns: (user, address) => resolver.owns(user, address),
  });

  const dirOf = (address: string) => path.join(spool, crypto.createHash('sha256').update(address).digest('hex').slice(0, 32));
  const mailboxDir = (mailbox: string): string | undefined => {
    const at = mailbox.lastIndexOf('@');
    if (at < 1 || !targetOf(mailbox.slice(0, at), mailbox.slice(at + 1))) return undefined;
    const dir = dirOf(mailbox);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'address');
    if (!fs.existsSync(file)) fs.writeFileSync(file, `${mailbox}\n`, { mode: 0o600 });
    return dir;
  };

  let chain: Promise<void> = Promise.resolve();
  const run = (job: () => Promise<void>) => {
    chain = chain.then(job).catch((err: Error) => logger.error({ event: 'list_failed', err: err.message }, 'list mail could not be handled'));
  };
  const messageFiles = async (dir: string) => {
    const out: { file: string; junk: boolean }[] = [];
    for (const [sub, junk] of [['new', false], ['cur', false], ['.Junk/new', true], ['.Junk/cur', true]] as const) {
      const d = path.join(dir, sub);
      const names = await fsp.readdir(d).catch(() => [] as string[]);
      for (const n of names.sort()) out.push({ file: path.join(d, n), junk });
    }
    return out;
  };
  const handleIn = async (address: string, raw: Buffer, arrival: Arrival) => {
    const at = address.lastIndexOf('@');
    const t = targetOf(address.slice(0, at), address.slice(at + 1));
    if (t) await service.handle(t, arrival, raw);
  };

  // Leftovers of a crash: read as mail of unknown origin (held or ignored, never sent on).
  run(async () => {
    for (const d of await fsp.readdir(spool).catch(() => [] as string[])) {
      const dir = path.join(spool, d);
      const address = (await fsp.readFile(path.join(dir, 'address'), 'utf8').catch(() => '')).trim();
      for (const { file, junk } of await messageFiles(dir)) {
        const raw = await fsp.readFile(file);
        if (address) await handleIn(address, raw, { sender: '', junk });
        await fsp.rm(file, { force: true });
        logger.warn({ event: 'list_recovered', address, file: path.basename(file) }, 'list mail left from before a restart: read as of unknown sender');
      }
    }
  });

  const complaints: ListComplaints = {
    attribute: async (c) => (enabled ? service.attributeCopy({
      ...(c.original.listId ? { listId: c.original.listId } : {}), ...(c.original.unsubscribe ? { unsubscribe: c.original.unsubscribe } : {}),
      ...(c.original.mailFrom ? { mailFrom: c.original.mailFrom } : {}), rcptTo: c.originalRcptTo,
    }) : undefined),
    suppress: (list, member, why) => run(async () => service.suppress(list, member, why)),
  };

  return {
    service,
    resolver,
    mailboxDir,
    complaints,
    delivered(msg, address, content) {
      const dir = mailboxDir(address);
      if (!dir) return;
      run(async () => {
        const raw = content.buffers ? Buffer.concat(content.buffers as Buffer[]) : await readAll(content);
        const junk = msg.recipients.some((r) => r.address === address && r.destination.kind === 'local' && r.destination.folder === 'Junk');
        const client = typeof msg.meta.client === 'string' ? msg.meta.client : undefined;
        // What the session proved about the author (src/smtp/session.ts: meta.dmarc_pass, meta.user).
        const proof: AuthorProof = {
          ...(typeof msg.meta.dmarc_pass === 'string' ? { dmarcDomain: msg.meta.dmarc_pass } : {}),
          ...(msg.authenticated && typeof msg.meta.user === 'string' ? { user: msg.meta.user } : {}),
        };
        try {
          await handleIn(address, raw, { sender: msg.sender, ...(client ? { client } : {}), junk, proof });
        } finally {
          // The spool copy of this message (same bytes) is removed: it has been read.
          const digest = crypto.createHash('sha256').update(raw).digest('hex');
          for (const { file } of await messageFiles(dir)) {
            const st = await fsp.stat(file).catch(() => undefined);
            if (st?.size !== raw.length) continue;
            if (crypto.createHash('sha256').update(await fsp.readFile(file)).digest('hex') === digest) {
              await fsp.rm(file, { force: true });
              break;
            }
          }
        }
      });
    },
    undeliverable(msg, recipient) {
      if (msg.meta.origin !== 'list') return;
      const at = msg.sender.lastIndexOf('@');
      const t = at > 0 ? targetOf(msg.sender.slice(0, at), msg.sender.slice(at + 1)) : undefined;
      if (t?.kind === 'bounce' && t.member && t.member === recipient.address.toLowerCase()) {
        run(async () => service.failedCopy(t.list, t.member!, recipient.lastReply ?? 'failed'));
      }
    },
    async command(cmd, args) {
      try {
        return await listCommand(service, store, cmd, args ?? {}, freeAddress);
      } catch (err) {
        if (err instanceof ListError || err instanceof TokenError) throw new Error(err.message);
        throw err;
      }
    },
    close: async () => {
      await chain;
      store.close();
    },
  };
}

async function readAll(content: Content): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of content.stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const str = (v: unknown, what: string) => {
  if (typeof v !== 'string' || !v) throw new ListError('INVALID', `${what} is missing`);
  return v;
};

function show(l: List, store: ListStore) {
  const members = store.members(l.address);
  const count = (s: string) => members.filter((m) => m.state === s).length;
  return { ...l, created: new Date(l.created).toISOString(), members: { confirmed: count('confirmed'), pending: count('pending'), disabled: count('disabled'), suppressed: count('suppressed') }, held: store.held(l.address).length };
}

/** The control commands of `portcullis list` (src/cli/list.ts); the roster only goes to the administrator here. */
async function listCommand(service: ListService, store: ListStore, cmd: string, args: Record<string, unknown>, free: (list: string) => string | undefined): Promise<unknown> {
  const settings = Array.isArray(args.settings) ? args.settings.map(String) : [];
  switch (cmd) {
    case 'create': {
      const list = str(args.list, 'the list address').trim().toLowerCase();
      const problem = free(list);
      if (problem) throw new ListError('INVALID', problem);
      return show(store.create(list, parseSettings(settings)), store);
    }
    case 'delete': store.delete(str(args.list, 'the list address')); return { deleted: args.list };
    case 'set': return show(store.set(str(args.list, 'the list address'), parseSettings(settings)), store);
    case 'show': return args.list ? show(store.require(String(args.list)), store) : store.all().map((l) => show(l, store));
    case 'members': {
      const l = store.require(str(args.list, 'the list address'));
      return store.members(l.address).map((m) => ({ ...m, added: new Date(m.added).toISOString(), ...(m.confirmed ? { confirmed: new Date(m.confirmed).toISOString() } : {}) }));
    }
    case 'subscribe': case 'import': {
      const addresses = Array.isArray(args.addresses) ? args.addresses.map(String) : [];
      if (!addresses.length) throw new ListError('INVALID', 'no address given');
      return service.invite(str(args.list, 'the list address'), addresses);
    }
    case 'unsubscribe': {
      const l = store.require(str(args.list, 'the list address'));
      const addresses = Array.isArray(args.addresses) ? args.addresses.map(String) : [];
      return { removed: addresses.filter((a) => store.remove(l.address, a.trim().toLowerCase())) };
    }
    case 'held': return store.held(store.require(str(args.list, 'the list address')).address).map((h) => ({ ...h, at: new Date(h.at).toISOString() }));
    case 'approve': case 'discard':
      return service.moderate(str(args.list, 'the list address'), Number(args.id), cmd === 'approve');
    default: throw new ListError('INVALID', `unknown list command ${cmd}`);
  }
}
