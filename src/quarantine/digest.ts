// The per-user quarantine digest (quarantine.digest): now and then — daily at 08:00 UTC by
// default — each local user with messages held for them since their last digest gets one plain
// text mail listing them, each with two signed, expiring, single-use links (links.ts): release
// it, or allow its sender. None when nothing new is held. The mail is composed with nodemailer's
// MailComposer (encoded words, quoted-printable, line lengths) and written into the user's INBOX.
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Logger } from '../log.js';
import type { DigestConfig } from './config.js';
import type { Links } from './links.js';
import type { Quarantine } from './quarantine.js';
import type { QuarantineItem, QuarantineReason } from './types.js';

export interface DigestDeps {
  readonly config: DigestConfig;
  readonly hostname: string;
  readonly quarantine: Quarantine;
  readonly links: Links;
  readonly logger: Logger;
  /** Writes the digest into the user's INBOX. */
  readonly deliver: (address: string, message: Buffer) => Promise<void>;
  /** Only local users get a digest (a relayed recipient has its own mail system). */
  readonly isLocal: (address: string) => boolean;
  readonly now?: () => number;
}

const WHY: Record<QuarantineReason, string> = {
  attachment_stripped: 'an attachment was removed; this is the original',
  attachment_defanged: 'an attachment was renamed harmless; this is the original',
  virus: 'a virus was found (release only if you are sure)',
  policy_band: 'held by the spam policy',
  outbound_hold: 'outbound mail held by the sending limits',
};

/** The link the console answers (src/web/: GET shows a confirmation, POST acts). */
export function linkUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/q/link?token=${encodeURIComponent(token)}`;
}

/** One user's digest as an RFC 5322 message. */
export async function composeDigest(opts: {
  readonly hostname: string;
  readonly recipient: string;
  readonly items: readonly QuarantineItem[];
  readonly links: Links;
  readonly baseUrl: string;
  readonly expiresAt: number;
  readonly now: number;
}): Promise<Buffer> {
  const { recipient, items } = opts;
  const sign = (id: string, action: 'release' | 'allow_sender') =>
    linkUrl(opts.baseUrl, opts.links.signLink({ id, recipient, action, expiresAt: opts.expiresAt }));
  const lines = [
    `${items.length} message${items.length === 1 ? ' was' : 's were'} held for you since your last digest.`,
    `The links below work once each, until ${new Date(opts.expiresAt).toISOString().replace('T', ' ').slice(0, 16)} UTC.`,
    '',
  ];
  for (const it of items) {
    lines.push(
      `* ${it.time.replace('T', ' ').slice(0, 16)} UTC  from ${it.sender || '<>'}`,
      `  Subject: ${it.subject || '(no subject)'}`,
      `  Why: ${WHY[it.reason]}${it.detail ? ` (${it.detail.slice(0, 200)})` : ''}`,
      `  Release it to your inbox: ${sign(it.id, 'release')}`,
      ...(it.sender ? [`  Always accept mail from ${it.sender}: ${sign(it.id, 'allow_sender')}`] : []),
      '',
    );
  }
  lines.push('Held messages are kept for a limited time and then deleted.', `-- the mail gateway ${opts.hostname}`);
  const mail = new MailComposer({
    from: { name: 'Mail quarantine', address: `postmaster@${opts.hostname}` },
    to: recipient,
    subject: `Quarantine: ${items.length} message${items.length === 1 ? '' : 's'} held for you`,
    date: new Date(opts.now),
    text: `${lines.join('\n')}\n`,
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Portcullis-Digest': '1' },
  });
  const raw = await mail.compile().build();
  // Maildir files carry CRLF like every other message the gateway writes.
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

export class DigestScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: DigestDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** When the next digest run is due: `at` (UTC) today, then every `every`, the first one after now. */
  nextRun(now = this.now()): number {
    const [h, m] = this.deps.config.at.split(':').map(Number) as [number, number];
    const day = new Date(now);
    let t = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m);
    const every = Math.max(60_000, this.deps.config.every);
    if (t > now) while (t - every > now) t -= every;
    while (t <= now) t += every;
    return t;
  }

  /** Sends every due digest now; resolves with how many were sent. One run at a time. */
  runNow(): Promise<number> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(): void {
    const wait = Math.min(2 ** 31 - 1, Math.max(1000, this.nextRun() - this.now()));
    this.timer = setTimeout(() => {
      this.runNow()
        .catch((err) => this.deps.logger.error({ event: 'digest_failed', err: (err as Error).message }, 'quarantine digests failed'))
        .finally(() => {
          if (this.timer) this.schedule();
        });
    }, wait);
    this.timer.unref();
  }

  private async run(): Promise<number> {
    const { quarantine, config } = this.deps;
    const now = this.now();
    const due = quarantine.heldSince(now, (a) => quarantine.lastDigest(a));
    let sent = 0;
    for (const [address, items] of due) {
      if (!this.deps.isLocal(address)) continue;
      try {
        const message = await composeDigest({
          hostname: this.deps.hostname, recipient: address, items, links: this.deps.links,
          baseUrl: config.base_url!, expiresAt: now + config.link_ttl, now,
        });
        await this.deps.deliver(address, message);
        quarantine.markDigest(address, now);
        sent++;
        this.deps.logger.info({ event: 'digest_sent', to: address, messages: items.length }, 'quarantine digest delivered');
      } catch (err) {
        this.deps.logger.error({ event: 'digest_failed', to: address, err: (err as Error).message }, 'could not deliver a quarantine digest');
      }
    }
    return sent;
  }
}
