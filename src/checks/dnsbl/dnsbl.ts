// DNS blocklists and allowlists at connect, weighed as postscreen weighs them
// (postscreen_dnsbl_sites, postscreen_dnsbl_threshold): every list is asked at once, each
// answer that passes the list's return-code filter adds the list's weight (an allowlist has a
// negative weight), and a sum at or above the threshold makes DNSBL_LISTED, which carries the
// refusal (Postfix's 554 5.7.1 naming the lists). The check never refuses: the actions layer
// does (DNSBL_LISTED: reject by default), and the session applies a connect-stage reject at each
// RCPT, so the envelope is logged and an authenticated client is not refused (DESIGN.md, postscreen).
//
// Symbols (symbols.ts): DNSBL_<NAME> (weight > 0) and DNSWL_<NAME> (weight < 0), scored with the
// list's weight; DNSBL_LISTED (weight 0) at the threshold; DNSBL_TEMPFAIL (0 by default) when a
// list could not be asked. A DNS error never refuses and never hangs: the resolver answers
// "error" after its own timeout.
import type { Check, SymbolHit } from '../types.js';
import type { DnsblConfig } from './config.js';
import type { Lookup, Resolver, RRType } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import { R, type Reply } from '../../protocol/reply.js';
import { compileCodeMatcher, formatIp, isRefusalCode, parseIp, reverseName, type CodeMatcher } from '../../net/ip-names.js';

export type { DnsblConfig };

export interface DnsblOptions {
  /** DNS failures are logged here (event "dnsbl_tempfail"). */
  readonly logger?: Logger;
  /**
   * The check's budget in the runner. The check waits for the resolver, which gives up on its
   * own; set this above two rounds of it (A, then TXT for a listing): 2 × timeout × attempts.
   */
  readonly timeoutMs?: number;
}

/** One configured list, compiled. */
export interface DnsList {
  readonly zone: string;
  /** DNSBL_<NAME> or DNSWL_<NAME>. */
  readonly symbol: string;
  readonly weight: number;
  readonly codes: CodeMatcher;
}

/** The longest TXT reason put in a reply or a symbol reason. */
export const MAX_TXT_LENGTH = 200;

/** ZEN_SPAMHAUS_ORG for zen.spamhaus.org: the zone in upper case, other characters as "_". */
export function listName(zone: string): string {
  return zone.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** Compiles the configured lists; throws on an invalid code filter or two lists with one symbol. */
export function compileLists(config: DnsblConfig): DnsList[] {
  const seen = new Map<string, number>();
  return config.lists.map((l, i) => {
    const zone = l.zone.toLowerCase().replace(/\.$/, '');
    const symbol = `${l.weight < 0 ? 'DNSWL' : 'DNSBL'}_${(l.name ?? listName(zone)).toUpperCase()}`;
    const other = seen.get(symbol);
    if (other !== undefined) {
      throw new Error(`dnsbl.lists[${i}] (${zone}): symbol ${symbol} is also the symbol of dnsbl.lists[${other}]; give one of them a name`);
    }
    seen.set(symbol, i);
    let codes: CodeMatcher;
    try {
      codes = compileCodeMatcher(l.codes);
    } catch (err) {
      throw new Error(`dnsbl.lists[${i}] (${zone}) codes: ${(err as Error).message}`);
    }
    return { zone, symbol, weight: l.weight, codes };
  });
}

/**
 * The connect-stage DNSBL/DNSWL check. Runs on mx listeners only, never for trusted networks.
 * Throws at construction (start-up) on an invalid list configuration.
 */
export function dnsbl(resolver: Resolver, config: DnsblConfig, options: DnsblOptions = {}): Check<'connect'> {
  const lists = compileLists(config);
  const zones = [...new Set(lists.map((l) => l.zone))];
  return {
    name: 'dnsbl',
    stage: 'connect',
    timeoutMs: options.timeoutMs ?? 10_000,
    async run({ conn }) {
      if (!lists.length || conn.listenerKind !== 'mx' || conn.trustedNetwork) return {};
      const parsed = parseIp(conn.remoteAddress);
      const rev = reverseName(conn.remoteAddress);
      if (!parsed || !rev) return {};
      const client = formatIp(parsed);

      const answers = new Map<string, Lookup<'A'>>();
      await Promise.all(zones.map(async (zone) => answers.set(zone, await ask(resolver, `${rev}.${zone}`, 'A'))));

      const failed: string[] = [];
      const listed: { list: DnsList; codes: string[] }[] = [];
      for (const zone of zones) {
        const a = answers.get(zone)!;
        if (a.status === 'error') failed.push(`${zone}: ${a.reason}`);
        if (a.status !== 'ok') continue;
        let matchedAny = false;
        for (const list of lists.filter((l) => l.zone === zone)) {
          const codes = a.records.filter((c) => list.codes.matches(c));
          if (codes.length) {
            listed.push({ list, codes });
            matchedAny = true;
          }
        }
        // 127.255.255.x is the list refusing to answer us (public resolver, rate limit, typo).
        if (!matchedAny && a.records.some(isRefusalCode)) {
          failed.push(`${zone}: query refused (answered ${a.records.filter(isRefusalCode).join(', ')})`);
        }
      }

      // The TXT reason, for the blocklists that listed the client (one query per zone).
      const txt = new Map<string, string>();
      const blockZones = [...new Set(listed.filter((h) => h.list.weight > 0).map((h) => h.list.zone))];
      await Promise.all(blockZones.map(async (zone) => {
        const t = await ask(resolver, `${rev}.${zone}`, 'TXT');
        if (t.status !== 'ok') return;
        const text = sanitizeTxt(t.records.map((strings) => strings.join('')));
        if (text) txt.set(zone, text);
      }));

      const symbols: SymbolHit[] = listed.map(({ list, codes }) => {
        const why = txt.get(list.zone);
        return { name: list.symbol, score: list.weight, reason: `${list.zone} returned ${codes.join(', ')}${why ? `: ${why}` : ''}` };
      });
      if (failed.length) {
        options.logger?.warn({ event: 'dnsbl_tempfail', client, lists: failed }, 'DNS list lookup failed');
        symbols.push({ name: 'DNSBL_TEMPFAIL', reason: sanitizeTxt(failed, 400) });
      }

      const total = listed.reduce((sum, h) => sum + h.list.weight, 0);
      if (total < config.threshold || !blockZones.length) return { symbols };
      const reason = blockZones.map((z) => txt.get(z)).find((t) => t !== undefined);
      symbols.push({
        name: 'DNSBL_LISTED', reason: `listed by ${blockZones.join(', ')}: weight ${total} >= dnsbl.threshold ${config.threshold}`,
        reply: blockedReply(client, blockZones, reason),
      });
      return { symbols };
    },
  };
}

/**
 * Postfix's wording (default_rbl_reply): 554 5.7.1 Service unavailable; Client host [IP] blocked
 * using zone[, zone]; TXT. The whole text stays well under the 512-octet reply line.
 */
export function blockedReply(client: string, zones: readonly string[], txt?: string): Reply {
  let using = zones.join(', ');
  if (using.length > 200) using = `${using.slice(0, 197)}...`;
  return R.policyReject(`Service unavailable; Client host [${client}] blocked using ${using}${txt ? `; ${txt}` : ''}`);
}

/**
 * TXT from a DNS list is foreign text going into an SMTP reply and a log line: printable ASCII
 * only (CR, LF and other controls become spaces, other bytes "?"), spaces collapsed, records
 * joined with " / ", at most `max` characters.
 */
export function sanitizeTxt(records: readonly string[], max = MAX_TXT_LENGTH): string {
  const clean = records.map((r) => r.replace(/[\x00-\x1f\x7f]/g, ' ').replace(/[^\x20-\x7e]/g, '?').replace(/\s+/g, ' ').trim());
  const text = [...new Set(clean)].filter(Boolean).join(' / ');
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** The resolver promises never to throw; a broken one still costs only a tempfail symbol. */
async function ask<T extends RRType>(resolver: Resolver, name: string, type: T): Promise<Lookup<T>> {
  try {
    return await resolver.lookup(name, type);
  } catch (err) {
    return { status: 'error', code: 'network', reason: (err as Error).message, source: 'dns' };
  }
}
