// `portcullis check-uri URL|DOMAIN... [--json]`: what the URI check makes of a URL or a
// domain — the normalised URL, host and registrable domain, what each configured list and the
// local lists say — through the same resolver, local zone mirrors and code filters as the
// gateway. Exit status: 0 nothing listed, 1 listed (a DNS list or the local block list),
// 2 usage error.
import { parseArgs } from 'node:util';
import { createResolver, resolverOptions } from '../dns/resolver.js';
import type { Resolver } from '../dns/types.js';
import { ZoneSet, type ZoneConfig } from '../dns/zones/zone-mirror.js';
import { silentLogger } from '../log.js';
import type { UriConfig } from '../checks/uri/config.js';
import { extractUris, type ExtractedUri } from '../checks/uri/extract.js';
import { parseMessage } from '../mime/text.js';
import { uriCheck } from '../checks/uri/uri-check.js';
import { hostInfo } from '../checks/uri/host.js';

/** The parts of the gateway configuration the command reads (the full Config satisfies it). */
export interface CheckUriConfig {
  readonly uri: UriConfig;
  readonly domains?: readonly string[];
  readonly dns: Parameters<typeof resolverOptions>[0] & { readonly zones: readonly ZoneConfig[] };
}

export interface CheckUriIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Tests inject the resolver; by default one is built from config.dns with its zone mirrors. */
  readonly resolver?: Resolver;
}

const USAGE = 'usage: portcullis check-uri URL|DOMAIN... [--json]\n';

export async function checkUriCommand(argv: readonly string[], config: CheckUriConfig, io: CheckUriIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let values: { json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options: { json: { type: 'boolean' } }, allowPositionals: true }));
  } catch (err) {
    io.stderr.write(`check-uri: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!positionals.length) {
    io.stderr.write(USAGE);
    return 2;
  }
  let zones: ZoneSet | undefined;
  let resolver = io.resolver;
  if (!resolver) {
    zones = ZoneSet.fromConfig(config.dns.zones.map((z) => ({ ...z })), { logger: silentLogger(), watch: false });
    await zones.load();
    resolver = createResolver(resolverOptions(config.dns, config.dns.zones.length ? [zones] : undefined));
  }
  let check;
  try {
    check = uriCheck({ resolver, config: config.uri, ownDomains: config.domains ?? [], logger: silentLogger() });
  } catch (err) {
    zones?.close();
    io.stderr.write(`check-uri: ${(err as Error).message}\n`);
    return 2;
  }
  const reports = [];
  let listed = false;
  try {
    for (const arg of positionals) {
      const uris = uriOf(arg);
      if (!uris.length) {
        reports.push({ input: arg, error: 'no URL or domain with a known top-level domain found' });
        continue;
      }
      const found = await check.inspect(undefined, uris);
      if (found.symbols.some((s) => s.name.startsWith('URIBL_') && s.name !== 'URIBL_TEMPFAIL' || s.name === 'URI_LOCAL_BLOCK')) listed = true;
      reports.push({
        input: arg,
        uris: uris.map((u) => ({ url: u.url, host: u.host, domain: u.domain, isIp: u.isIp, flags: u.flags, ...(u.via ? { via: u.via } : {}) })),
        lookups: found.lookups,
        skipped: found.skipped,
        symbols: found.symbols,
      });
    }
  } finally {
    check.close();
    zones?.close();
  }
  if (values.json) io.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else io.stdout.write(`${reports.map(describe).join('\n')}\n`);
  if (!config.uri.lists.length && !values.json) io.stdout.write('(no URI DNS list is configured: uri.lists is empty)\n');
  return listed ? 1 : 0;
}

/** A URL or a domain typed on the command line, through the same extraction as a message's text. */
function uriOf(arg: string): ExtractedUri[] {
  // A bare domain is taken as typed, whatever its TLD (a test zone's "evil.test" included).
  const info = /^[^/:@?#\s]+$/.test(arg) ? hostInfo(arg) : undefined;
  if (info) return [{ url: `http://${info.host}/`, host: info.host, domain: info.domain, isIp: info.isIp, source: 'text', raw: arg, flags: ['schemeless'] }];
  const msg = parseMessage(Buffer.from(`Subject: \r\n\r\n${arg}\r\n`));
  return extractUris(msg).map((u) => ({ ...u, flags: u.flags.filter((f) => f !== 'unlinked') }));
}

function describe(r: { input: string; error?: string; uris?: { url: string; host: string; domain: string; flags: readonly string[]; via?: string }[]; lookups?: { name: string; list: string; answer: string }[]; skipped?: { name: string; why: string }[]; symbols?: { name: string; score?: number; reason: string }[] }): string {
  if (r.error) return `${r.input}: ${r.error}`;
  const lines = [r.input];
  for (const u of r.uris ?? []) {
    lines.push(`  url ${u.url}`);
    lines.push(`    host ${u.host}  registrable domain ${u.domain}${u.flags.length ? `  [${u.flags.join(', ')}]` : ''}${u.via ? `  (target of ${u.via})` : ''}`);
  }
  for (const l of r.lookups ?? []) lines.push(`  ${l.list.padEnd(24)} ${l.name}: ${l.answer}`);
  for (const s of r.skipped ?? []) lines.push(`  not looked up: ${s.name} (${s.why})`);
  if (!r.symbols?.length) lines.push('  no symbols');
  for (const s of r.symbols ?? []) lines.push(`  ${s.name.padEnd(24)} ${s.score !== undefined ? String(s.score).padStart(6) : '     -'}  ${s.reason}`);
  return lines.join('\n');
}
