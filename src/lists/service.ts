// The list engine: what happens to mail that reached a list address (after the gateway
// accepted it, so nothing here ever bounces), and the administrator's and the web's requests.
//
// - Posts from confirmed members go to every confirmed member, one copy each (its own VERP
//   return path and one-click unsubscribe token), through the outbound queue. Posts from
//   anyone else, spam, and oversize posts are held for moderation and the owners told; the
//   sender hears nothing (it may be forged).
// - Requests (subscribe, unsubscribe, status, help) are answered to the requesting address
//   with the same text whether or not it is a member, after the same work; subscribing and
//   unsubscribing take effect only when the address answers a signed, expiring, single-use
//   token (by reply or by the web link). Rate limits per source IP and address in the StateStore.
// - Bounces to a member's VERP address count against it; `bounce_limit` hard ones disable it.
import crypto from 'node:crypto';
import PostalMime from 'postal-mime';
import type { Logger } from '../log.js';
import type { Resolver } from '../dns/types.js';
import type { StateStore } from '../store/store.js';
import type { ListsConfig } from './config.js';
import { ListError, normalAddress, type List, type ListStore } from './store.js';
import { ListTokens, TokenError, type TokenClaim } from './tokens.js';
import { bouncesAddress, listId, listTarget, ownerAddress, parseRequest, requestAddress, verpAddress, type ListTarget } from './addresses.js';
import { authorOf, composePost, memberCopy, splitMessage } from './compose.js';
import { dmarcStrictness } from './dmarc.js';
import { readBounce } from './bounces.js';

export interface ListSubmit {
  /** Hands one message to the outbound queue (the gateway decides local or remote per recipient). */
  (envelope: { from: string; to: string[] }, message: Buffer): Promise<void>;
}

export interface ListServiceDeps {
  readonly store: ListStore;
  readonly tokens: ListTokens;
  readonly state: StateStore;
  readonly config: ListsConfig;
  readonly resolver: Resolver;
  readonly logger: Logger;
  readonly hostname: string;
  readonly webUrl: string;
  readonly submit: ListSubmit;
  /** DKIM-signs (and ARC-seals when the post allows it) a copy with the list domain's key. */
  readonly sign: (copy: Buffer, listDomain: string, postHead: Buffer) => Promise<Buffer>;
  /** Whether an authenticated user may send as an address (itself, an alias it owns); default: the same address. */
  readonly owns?: (user: string, address: string) => boolean;
  readonly now?: () => number;
}

export interface Arrival {
  /** Envelope sender ('' for a bounce). */
  readonly sender: string;
  /** The client's IP address (rate limits). */
  readonly client?: string;
  /** The pipeline put it in Junk. */
  readonly junk: boolean;
  /**
   * What the gateway proved about the author: the From domain that passed DMARC, and the user
   * of an authenticated submission. Without one of them a From naming a member proves nothing
   * (anyone can write it), so the post is held.
   */
  readonly proof?: AuthorProof;
}

export interface AuthorProof {
  /** The RFC 5322.From domain DMARC passed for (lower case). */
  readonly dmarcDomain?: string;
  /** The account that submitted it over authenticated submission. */
  readonly user?: string;
}

export type ConfirmOutcome = { action: 'subscribe' | 'unsubscribe'; list: string; address: string };

/** What a complaint report shows of the reported message (src/reports/classify.ts reads it). */
export interface ReportedCopy {
  /** The List-Id field's id (team.example.org). */
  readonly listId?: string;
  /** The List-Unsubscribe field (it carries the member's own one-click token). */
  readonly unsubscribe?: string;
  /** The envelope sender (ARF Original-Mail-From, or the copy's Return-Path): our VERP address. */
  readonly mailFrom?: string;
  /** The recipients the report names (ARF Original-Rcpt-To). */
  readonly rcptTo: readonly string[];
}

/**
 * The list a reported message was a copy of, and the member it went to when the report shows
 * it: `unsubscribe-token` (the member's own signed one-click token: whoever reports it had that
 * copy), `verp` (the copy's return path names the member), `rcpt-to` (a recipient the report
 * names is on the list). A member without `by`: the list only.
 */
export interface CopyAttribution {
  readonly list: string;
  readonly member?: string;
  readonly by?: 'unsubscribe-token' | 'verp' | 'rcpt-to';
}

/** Why a post whose From names a member (or an owner) but whose author nothing proved is held. */
export const UNPROVEN = 'the author\'s address is not authenticated (no DMARC pass)';

/** Held-post notices to the owners per list and hour at most. */
const NOTICES_PER_HOUR = 10;

const domainOf = (a: string) => a.slice(a.lastIndexOf('@') + 1);

export class ListService {
  private readonly now: () => number;

  constructor(private readonly deps: ListServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  get store(): ListStore {
    return this.deps.store;
  }

  /** Mail that reached one of a list's addresses. Never throws (it is logged). */
  async handle(target: ListTarget, arrival: Arrival, raw: Buffer): Promise<void> {
    const list = this.deps.store.get(target.list);
    if (!list) return;
    switch (target.kind) {
      case 'post': return this.post(list, arrival, raw);
      case 'bounce': return this.bounce(list, target.member, raw);
      case 'owner': return this.toOwners(list, arrival, raw);
      case 'subscribe': case 'unsubscribe': case 'request': return this.request(list, target.kind, arrival, raw);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Posts

  private async post(list: List, arrival: Arrival, raw: Buffer): Promise<void> {
    const log = this.deps.logger;
    const email = await PostalMime.parse(raw);
    const author = authorOf(email);
    const { fields } = splitMessage(raw);
    const value = (k: string) => fields.find((f) => f.key === k)?.line.slice(k.length + 1).trim() ?? '';
    // Our own copies coming back (a member forwarding to the list): dropped, not held.
    if (fields.some((f) => f.key === 'list-id' && f.line.toLowerCase().includes(`<${list.address.replace('@', '.')}>`))) {
      log.info({ event: 'list_loop', list: list.address, sender: arrival.sender }, 'post carries this list\'s List-Id: dropped');
      return;
    }
    const from = author?.address ?? '';
    const member = from ? this.deps.store.member(list.address, from) : undefined;
    const privileged = !!from && (list.owners.includes(from) || list.moderators.includes(from));
    const reason = arrival.junk ? 'the gateway classified it as spam'
      : !author ? 'no author address in From'
      : !arrival.sender ? 'a bounce or an automatic message (empty envelope sender)'
      : raw.length > this.deps.config.max_post_size ? `larger than lists.max_post_size (${this.deps.config.max_post_size} bytes)`
      : list.posting === 'owners' && !privileged ? 'only owners and moderators post to this list'
      : !privileged && member?.state !== 'confirmed' ? 'the author is not a member'
      : !this.proven(arrival.proof, from) ? UNPROVEN
      : undefined;
    if (reason) {
      const id = this.deps.store.hold(list.address, { sender: arrival.sender, from, subject: email.subject ?? '', reason, raw });
      log.info({ event: 'list_held', list: list.address, id, sender: arrival.sender, from, reason }, `post to ${list.address} held for moderation: ${reason}`);
      await this.notifyOwners(list, `Post held for moderation on ${list.address}`,
        `A post to ${list.address} is held for moderation (id ${id}).\n\nFrom: ${from || '(none)'}\nEnvelope sender: ${arrival.sender || '<>'}\n` +
        `Subject: ${(email.subject ?? '').slice(0, 200)}\nReason: ${reason}\n\nThe sender was not told. To send it: portcullis list approve ${list.address} ${id}\n` +
        `To drop it: portcullis list discard ${list.address} ${id}\n`);
      return;
    }
    await this.distribute(list, raw, author!, value('subject'));
  }

  /** The author's address is the one DMARC passed for, or one the submitting user may send as. */
  private proven(proof: AuthorProof | undefined, from: string): boolean {
    if (!proof) return false;
    if (proof.dmarcDomain && proof.dmarcDomain === domainOf(from)) return true;
    const owns = this.deps.owns ?? ((user: string, address: string) => user.toLowerCase() === address);
    return !!proof.user && owns(proof.user, from);
  }

  /** Sends a post to every confirmed member. Returns the number of copies queued. */
  async distribute(list: List, raw: Buffer, author: { name: string; address: string }, subject = ''): Promise<number> {
    const authorDomain = domainOf(author.address);
    const listDomain = domainOf(list.address);
    const rewrite = authorDomain !== listDomain && (await dmarcStrictness(authorDomain, this.deps.resolver)) === 'strict';
    const post = await composePost(raw, { list, author, rewriteFrom: rewrite, webUrl: this.deps.webUrl });
    const members = this.deps.store.members(list.address, 'confirmed').slice(0, this.deps.config.max_members);
    const head = splitMessage(raw).fields.map((f) => f.line).join('\r\n') + '\r\n\r\n';
    let sent = 0;
    for (const m of members) {
      const leave = this.deps.tokens.sign(list.address, m.address, 'leave', 0);
      const copy = await this.deps.sign(memberCopy(post, list, this.deps.webUrl, leave), listDomain, Buffer.from(head, 'latin1'));
      try {
        await this.deps.submit({ from: verpAddress(list.address, m.address), to: [m.address] }, copy);
        sent++;
      } catch (err) {
        this.deps.logger.error({ event: 'list_send_failed', list: list.address, member: m.address, err: (err as Error).message }, 'could not queue a list copy');
      }
    }
    this.deps.logger.info({ event: 'list_post', list: list.address, from: author.address, copies: sent, from_rewritten: rewrite, subject: subject.slice(0, 200) },
      `post to ${list.address} sent to ${sent} member(s)${rewrite ? ' (From rewritten: the author\'s domain has a strict DMARC policy)' : ''}`);
    return sent;
  }

  /** A held post: sent to the members (approve) or dropped (discard). */
  async moderate(listAddress: string, id: number, approve: boolean): Promise<{ id: number; copies?: number }> {
    const list = this.deps.store.require(listAddress);
    const raw = this.deps.store.takeHeld(list.address, id);
    if (!raw) throw new ListError('INVALID', `no held post ${id} on ${list.address}`);
    if (!approve) return { id };
    const email = await PostalMime.parse(raw);
    const author = authorOf(email) ?? { name: '', address: ownerAddress(list.address) };
    return { id, copies: await this.distribute(list, raw, author, email.subject ?? '') };
  }

  private async toOwners(list: List, arrival: Arrival, raw: Buffer): Promise<void> {
    if (arrival.junk || !list.owners.length) return;
    await this.deps.submit({ from: bouncesAddress(list.address), to: [...list.owners] }, raw);
  }

  private async notifyOwners(list: List, subject: string, text: string): Promise<void> {
    const to = [...new Set([...list.owners, ...list.moderators])];
    if (!to.length) return;
    // A flood of held posts must not become a flood of notices: some an hour, the rest in `list held`.
    if ((await this.deps.state.hit(`list:notify:${list.address}`, 3_600_000)) > NOTICES_PER_HOUR) {
      this.deps.logger.info({ event: 'list_notice_skipped', list: list.address }, `more than ${NOTICES_PER_HOUR} notices this hour: see portcullis list held`);
      return;
    }
    try {
      await this.deps.submit({ from: bouncesAddress(list.address), to }, this.message(list, to.join(', '), subject, text));
    } catch (err) {
      this.deps.logger.error({ event: 'list_send_failed', list: list.address, err: (err as Error).message }, 'could not tell the owners');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Bounces

  private async bounce(list: List, member: string | undefined, raw: Buffer): Promise<void> {
    if (!member) {
      this.deps.logger.info({ event: 'list_bounce', list: list.address }, 'bounce without a member address (not a list copy): ignored');
      return;
    }
    const verdict = await readBounce(raw);
    if (!verdict.hard) {
      this.deps.logger.info({ event: 'list_bounce', list: list.address, member, hard: false, reason: verdict.reason }, 'temporary bounce: not counted');
      return;
    }
    this.countHard(list, member, verdict.reason);
  }

  /**
   * Our own queue gave up on a list copy (a 5xx from the member's server, or the queue lifetime
   * passed): counted like a hard bounce to the member's VERP address, since no DSN will come.
   */
  failedCopy(listAddress: string, member: string, reply: string): void {
    const list = this.deps.store.get(listAddress);
    if (!list) return;
    this.countHard(list, member, `undeliverable from here: ${reply.slice(0, 200)}`);
  }

  private countHard(list: List, member: string, reason: string): void {
    const before = this.deps.store.member(list.address, member);
    const after = this.deps.store.bounce(list.address, member, this.deps.config.bounce_limit);
    if (!after) return;
    this.deps.logger.info({ event: 'list_bounce', list: list.address, member, hard: true, bounces: after.bounces, reason }, `hard bounce ${after.bounces} of ${member}`);
    if (before?.state === 'confirmed' && after.state === 'disabled') {
      this.deps.logger.warn({ event: 'list_member_disabled', list: list.address, member, bounces: after.bounces },
        `${member} disabled on ${list.address} after ${after.bounces} hard bounces (lists.bounce_limit)`);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Complaints

  /** Which list (and member) a reported message was a copy for; undefined when it is not our list mail. */
  async attributeCopy(copy: ReportedCopy): Promise<CopyAttribution | undefined> {
    const token = /[?&]token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(copy.unsubscribe ?? '')?.[1];
    if (token) {
      const claim = await this.deps.tokens.verify(token).catch(() => undefined);
      if (claim?.action === 'leave' && this.deps.store.get(claim.list)) return { list: claim.list, member: claim.address, by: 'unsubscribe-token' };
    }
    const from = copy.mailFrom?.toLowerCase() ?? '';
    const at = from.lastIndexOf('@');
    const verp = at > 0 ? listTarget(from.slice(0, at), from.slice(at + 1), (a) => !!this.deps.store.get(a)) : undefined;
    if (verp?.kind === 'bounce' && verp.member) return { list: verp.list, member: verp.member, by: 'verp' };
    const id = copy.listId?.toLowerCase();
    const list = verp?.list ?? (id ? this.deps.store.all().find((l) => listId(l.address) === id)?.address : undefined);
    if (!list) return undefined;
    const member = copy.rcptTo.map((a) => a.toLowerCase()).find((a) => this.deps.store.member(list, a));
    return member ? { list, member, by: 'rcpt-to' } : { list };
  }

  /** A member complained about the list's mail: no more copies until it subscribes itself again. */
  suppress(listAddress: string, member: string, why: string): void {
    const before = this.deps.store.member(listAddress, member);
    const after = this.deps.store.suppress(listAddress, member);
    if (!after) return;
    this.deps.logger.warn({ event: 'list_member_suppressed', list: listAddress, member, was: before?.state ?? 'not a member', reason: why },
      `${member} suppressed on ${listAddress}: ${why}`);
  }

  // ---------------------------------------------------------------------------------------
  // Requests

  private async request(list: List, kind: 'request' | 'subscribe' | 'unsubscribe', arrival: Arrival, raw: Buffer): Promise<void> {
    const log = this.deps.logger;
    const { fields } = splitMessage(raw);
    const value = (k: string) => fields.find((f) => f.key === k)?.line.slice(k.length + 1).trim().toLowerCase() ?? '';
    // Never answer a bounce, an automatic message or another list (RFC 3834 s2), nor spam.
    const auto = value('auto-submitted');
    if (arrival.junk || !arrival.sender || (auto && auto !== 'no') || /^(bulk|junk|list)$/.test(value('precedence'))) {
      log.info({ event: 'list_request_ignored', list: list.address, sender: arrival.sender }, 'request not answered (automatic, bounce or spam)');
      return;
    }
    const email = await PostalMime.parse(raw);
    const address = authorOf(email)?.address ?? arrival.sender.toLowerCase();
    if (!(await this.allowed(arrival.client, address))) {
      log.warn({ event: 'list_request_limited', list: list.address, client: arrival.client, address }, 'list request over lists.rate: not answered');
      return;
    }
    const parsed = kind === 'request' ? parseRequest(email.subject ?? '', email.text ?? '') : { command: kind };
    if (parsed.command === 'confirm') {
      try {
        const outcome = await this.confirm(parsed.token!);
        await this.answer(list, outcome.address, 'result', outcome.action);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        log.info({ event: 'list_confirm_refused', list: list.address, address, code: err.code }, `confirmation refused: ${err.message}`);
        await this.answer(list, address, 'refused', undefined, err.message);
      }
      return;
    }
    const command = parsed.command === 'unknown' ? 'help' : parsed.command;
    log.info({ event: 'list_request', list: list.address, command, address, client: arrival.client }, `list request ${command}`);
    await this.answer(list, address, command);
  }

  /** Per source IP and per address (the StateStore's sliding windows, shared by every node). */
  private async allowed(client: string | undefined, address: string): Promise<boolean> {
    const { per_ip, per_address, window } = this.deps.config.rate;
    const byAddress = await this.deps.state.hit(`list:rate:addr:${address}`, window);
    const byIp = client ? await this.deps.state.hit(`list:rate:ip:${client}`, window) : 0;
    return byAddress <= per_address && byIp <= per_ip;
  }

  /**
   * A subscription request on the administrator's behalf (`list subscribe`, `list import`):
   * recorded as pending, and the confirmation request sent; membership waits for the answer.
   */
  async invite(listAddress: string, addresses: readonly string[]): Promise<{ invited: string[]; skipped: { address: string; reason: string }[] }> {
    const list = this.deps.store.require(listAddress);
    const invited: string[] = [];
    const skipped: { address: string; reason: string }[] = [];
    for (const given of addresses) {
      let address: string;
      try {
        address = normalAddress(given);
      } catch (err) {
        skipped.push({ address: given, reason: (err as Error).message });
        continue;
      }
      const m = this.deps.store.member(list.address, address);
      if (m?.state === 'confirmed') {
        skipped.push({ address, reason: 'already a confirmed member' });
        continue;
      }
      // It complained about this list: only its own request (and confirmation) brings it back.
      if (m?.state === 'suppressed') {
        skipped.push({ address, reason: 'suppressed after a complaint about the list\'s mail (the address may subscribe itself)' });
        continue;
      }
      this.deps.store.request(list.address, address, this.deps.config.max_members);
      await this.answer(list, address, 'subscribe');
      invited.push(address);
    }
    this.deps.logger.info({ event: 'list_invited', list: list.address, invited: invited.length, skipped: skipped.length }, `confirmation requests sent for ${list.address}`);
    return { invited, skipped };
  }

  /** Spends a confirmation token and applies it (mail reply or web POST). TokenError when refused. */
  async confirm(token: string): Promise<ConfirmOutcome> {
    const claim = await this.deps.tokens.consume(token);
    return this.apply(claim);
  }

  /** RFC 8058 one-click (and the unsubscribe page): the member leaves. */
  async leave(token: string): Promise<ConfirmOutcome> {
    const claim = await this.deps.tokens.verify(token);
    if (claim.action !== 'leave' && claim.action !== 'unsubscribe') throw new TokenError('ALTERED', 'not an unsubscribe link');
    return this.apply(claim.action === 'leave' ? claim : await this.deps.tokens.consume(token));
  }

  /** What a token would do, without spending it (the confirmation page). */
  async describe(token: string): Promise<TokenClaim> {
    return this.deps.tokens.verify(token);
  }

  private apply(claim: TokenClaim): ConfirmOutcome {
    const list = this.deps.store.require(claim.list);
    if (claim.action === 'subscribe') {
      this.deps.store.confirm(list.address, claim.address);
      this.deps.logger.info({ event: 'list_confirmed', list: list.address, member: claim.address }, `${claim.address} confirmed on ${list.address}`);
      return { action: 'subscribe', list: list.address, address: claim.address };
    }
    const removed = this.deps.store.remove(list.address, claim.address);
    this.deps.logger.info({ event: 'list_unsubscribed', list: list.address, member: claim.address, removed }, `${claim.address} left ${list.address}`);
    return { action: 'unsubscribe', list: list.address, address: claim.address };
  }

  /**
   * The answer to a request. Its text depends on the command alone, never on whether the
   * address is a member: the lookup is made in every case, and every case signs a token.
   */
  private async answer(list: List, address: string, what: 'subscribe' | 'unsubscribe' | 'status' | 'help' | 'result' | 'refused', done?: 'subscribe' | 'unsubscribe', why?: string): Promise<void> {
    this.deps.store.member(list.address, address);
    const expiry = this.deps.config.confirm_expiry;
    const action = what === 'unsubscribe' ? 'unsubscribe' : 'subscribe';
    const token = this.deps.tokens.sign(list.address, address, action, expiry);
    const hours = Math.round(expiry / 3_600_000);
    const req = requestAddress(list.address);
    const help = `Commands, in the Subject or the first line of a message to ${req}:\n  subscribe     ask to join (you confirm by answering the request)\n  unsubscribe   ask to leave (you confirm the same way)\n  help          this text\n`;
    let subject: string;
    let text: string;
    switch (what) {
      case 'subscribe': case 'unsubscribe':
        subject = `confirm ${token}`;
        text = `Someone (perhaps you) asked to ${what} ${address} ${what === 'subscribe' ? 'to' : 'from'} the list ${list.address}.\n\n` +
          `To confirm, open this link and press the button:\n\n  ${this.deps.webUrl}/list/confirm?token=${token}\n\n` +
          `or reply to this message (keep the Subject as it is). The request is valid for ${hours} hours.\n` +
          `If you did not ask, ignore this message: nothing changes without your answer.\n`;
        break;
      case 'status':
        subject = `Your subscription to ${list.address}`;
        text = `The list ${list.address} does not say by mail whether an address is subscribed: anyone can write in your name.\n` +
          `Every post you receive from the list carries a one-click unsubscribe link (List-Unsubscribe).\n\n${help}`;
        break;
      case 'help':
        subject = `Help for ${list.address}`;
        text = `${list.description ? `${list.description}\n\n` : ''}${help}`;
        break;
      case 'result':
        subject = done === 'subscribe' ? `Welcome to ${list.address}` : `You left ${list.address}`;
        text = done === 'subscribe' ? `${address} is now subscribed to ${list.address}.\nTo leave, use the unsubscribe link in any post, or write "unsubscribe" to ${req}.\n`
          : `${address} is not subscribed to ${list.address} (any longer).\n`;
        break;
      case 'refused':
        subject = `Your confirmation for ${list.address}`;
        text = `The confirmation could not be used: ${why ?? 'it is not valid'}.\nSend "subscribe" or "unsubscribe" to ${req} for a new one.\n`;
        break;
    }
    try {
      await this.deps.submit({ from: bouncesAddress(list.address), to: [address] }, await this.deps.sign(this.message(list, address, subject, text), domainOf(list.address), Buffer.alloc(0)));
    } catch (err) {
      this.deps.logger.error({ event: 'list_send_failed', list: list.address, address, err: (err as Error).message }, 'could not queue a list answer');
    }
  }

  /** A message from the list's request address (RFC 3834: auto-replied, no answer expected). */
  private message(list: List, to: string, subject: string, text: string): Buffer {
    const lines = [
      `From: ${JSON.stringify((list.description || list.address).replace(/[\r\n"\\]/g, ' '))} <${requestAddress(list.address)}>`,
      `To: ${to}`,
      `Subject: ${subject}`,
      `Date: ${new Date(this.now()).toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <${crypto.randomBytes(12).toString('hex')}@${this.deps.hostname}>`,
      'Auto-Submitted: auto-replied',
      `List-Id: <${list.address.replace('@', '.')}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
    ];
    return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${text.replace(/\r?\n/g, '\r\n')}`, 'utf8');
  }
}
