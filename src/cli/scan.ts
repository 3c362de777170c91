// `portcullis scan [--json] [--rewrite OUT] FILE...`: what the gateway's malware checks decide for
// message files — the attachment walk (with archives opened) and, when antivirus is enabled,
// clamd — with the same configuration, the same code and the same weights as the SMTP path.
// Exit status: 0 every message would be accepted (maybe rewritten), 1 one would be refused,
// 75 (EX_TEMPFAIL) one could not be judged (scanner down).
import fs from 'node:fs';
import type { Config } from '../config/schema.js';
import { scanFile, formatScan, type ScanResult } from '../mime/scan.js';
import { archiveInspector } from '../checks/av/archive-inspector.js';
import { avChecks } from '../checks/av/av-check.js';
import { clamdClient } from '../checks/index.js';
import { loadWeights } from '../pipeline/weights.js';
import { parseHeaderBlock } from '../smtp/headers.js';
import type { ConnectionFacts, Demand, ScoredSymbol } from '../pipeline/types.js';

export interface FileVerdict extends ScanResult {
  readonly file: string;
  readonly score: number;
}

const FACTS: ConnectionFacts = {
  sessionId: 'scan', listener: 'scan', listenerKind: 'mx', remoteAddress: '127.0.0.1', remotePort: 0,
  localAddress: '127.0.0.1', localPort: 0, trustedNetwork: false, esmtp: true,
};

/** The header block of a message file (up to the first empty line, at most 1 MiB). */
function headerBlock(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const head = buf.subarray(0, n);
    const end = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    return head.subarray(0, end >= 0 ? end + 4 : lf >= 0 ? lf + 2 : n);
  } finally {
    fs.closeSync(fd);
  }
}

export async function scanFiles(cfg: Config, files: readonly string[], rewriteDir?: string): Promise<FileVerdict[]> {
  const weights = loadWeights(cfg.policy.symbols);
  const clamd = cfg.antivirus.enabled ? clamdClient(cfg) : undefined;
  const inspectors = cfg.archives.enabled ? [archiveInspector({ config: cfg.archives, clamd, clamdFailure: cfg.antivirus.on_failure })] : [];
  const av = avChecks({ config: cfg.antivirus, archives: cfg.archives, clamd, archiveSymbols: false });
  const out: FileVerdict[] = [];
  for (const file of files) {
    const rewriteTo = rewriteDir ? `${rewriteDir}/${file.split('/').pop()}` : undefined;
    const r = await scanFile(file, cfg.attachments, { inspectors, weights, rewriteTo });
    const symbols: ScoredSymbol[] = [...r.symbols];
    let demand: Demand | undefined = r.demand;
    const size = fs.statSync(file).size;
    for (const check of av) {
      const res = await check.run({
        conn: FACTS, envelope: { sender: '', recipients: [] },
        message: { size, headers: parseHeaderBlock(headerBlock(file)), bareNewlines: 0, stream: () => fs.createReadStream(file) },
      });
      for (const s of res.symbols ?? []) symbols.push({ name: s.name, reason: s.reason, score: s.score ?? weights.get(s.name) ?? 0 });
      if (res.demand && (!demand || res.demand.kind === 'reject')) demand = res.demand;
    }
    const verdict = demand ? demand.kind : r.verdict;
    const score = Math.round(symbols.reduce((n, s) => n + s.score, 0) * 100) / 100;
    out.push({ ...r, file, symbols, demand, verdict, score });
  }
  return out;
}

export function scanExitStatus(results: readonly FileVerdict[]): number {
  if (results.some((r) => r.verdict === 'reject')) return 1;
  if (results.some((r) => r.verdict === 'tempfail')) return 75;
  return 0;
}

export function describeScan(results: readonly FileVerdict[]): string {
  return results.map((r) => `${formatScan(r.file, r)}\n  score ${r.score}`).join('\n\n');
}
