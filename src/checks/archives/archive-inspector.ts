// Archive inspection as an inspector of the one MIME walk (src/mime/inspector.ts, run by the
// message model's mime() facet): the walk hands it every archive part (decoded, bounded) and
// every text part; it opens each archive once and answers with ARCHIVE_* symbols and the archive
// policy's action on the part (strip an archive holding an executable, or an encrypted one nobody
// can open; refusing the message is policy.actions' call on ARCHIVE_EXE / ARCHIVE_ENCRYPTED,
// whose hits carry the reply), plus the findings as data. Encrypted zips wait for finish(), when
// every text part (where the password usually is) has been seen; their decrypted entries go to
// clamd, since clamd cannot open them itself. The attachment check and the AV check both read
// what it found from the same walk (the AV check: the scans, the virus, the scanner failure).
import type { Readable } from 'node:stream';
import type { SymbolHit } from '../types.js';
import type { FileType } from '../../mime/filetype.js';
import { readBounded, type Inspector, type InspectorFinding, type MessageInspection, type PartInfo } from '../../mime/inspector.js';
import { inspectArchive, type ArchiveReport } from '../../mime/archive.js';
import { archiveFormatFromName } from '../../mime/archive-types.js';
import { htmlToText, passwordCandidates } from './passwords.js';
import { archiveLimits, type ArchiveConfig } from '../av/config.js';
import { archiveSymbols } from '../av/av-check.js';
import type { ClamdClient, ScanResult } from '../av/clamd.js';
import { R, reply } from '../../protocol/reply.js';

export interface ArchiveInspectorOptions {
  readonly config: ArchiveConfig;
  /** Scans entries decrypted with a password from the message. Without it they are inspected, not scanned. */
  readonly clamd?: ClamdClient;
  /** Encrypted archives kept for finish() per message (default 10). */
  readonly maxDeferred?: number;
}

/** Zip-based documents are not archives a person sent as such; jars are executables (the attachment policy's). */
const NOT_ARCHIVES = new Set(['ooxml', 'odf', 'jar']);

const TEXT_CHARS = 256 * 1024;

export function archiveInspector(options: ArchiveInspectorOptions): Inspector {
  const { config } = options;
  return {
    name: 'archive',
    begin({ subject }): MessageInspection {
      const texts: string[] = [subject];
      const deferred: { part: PartInfo; name: string; data: Buffer }[] = [];
      let candidates: string[] | undefined;
      const passwords = () => (candidates ??= passwordCandidates(texts, { limit: config.max_passwords }));
      // Opens an archive; with a scanner, the entries only our passwords decrypted are scanned as
      // they come out (clamd sees the rest in the message itself).
      const run = (data: Buffer, name: string, signal: AbortSignal) => {
        const found: Scanned = { scans: [] };
        const clamd = options.clamd;
        return inspectArchive(data, name, {
          limits: archiveLimits(config), passwords: passwords(), bsdtar: config.bsdtar || false, signal,
          onEntry: clamd ? async (entry, content) => {
            if (!entry.decrypted || found.virus || found.failure) return;
            const t0 = performance.now();
            const r = await clamd.scanBuffer(content.subarray(0, clamd.maxStreamBytes));
            found.scans.push({ result: r.kind, seconds: (performance.now() - t0) / 1000 });
            if (r.kind === 'virus') found.virus = { signature: r.signature, where: entry.path };
            else if (r.kind === 'unavailable' || r.kind === 'error') found.failure = { reason: r.reason, where: entry.path };
          } : undefined,
        }).then((report) => ({ report, ...found }));
      };
      return {
        wants(part: PartInfo, type: FileType): boolean {
          if (!config.enabled) return false;
          if ((part.contentType === 'text/plain' || part.contentType === 'text/html') && !part.isAttachment) return true;
          if (type.category === 'archive') return !NOT_ARCHIVES.has(type.kind);
          return part.filenames.some((n) => archiveFormatFromName(n) !== undefined);
        },

        async inspect(part: PartInfo, type: FileType, content: Readable, ctx): Promise<InspectorFinding> {
          const isText = type.category !== 'archive' && (part.contentType === 'text/plain' || part.contentType === 'text/html') && !part.isAttachment;
          const { buffer } = await readBounded(content, isText ? TEXT_CHARS * 4 : config.max_total_size);
          if (isText) {
            const text = decodeUtf8OrLatin1(buffer).slice(0, TEXT_CHARS);
            texts.push(part.contentType === 'text/html' ? htmlToText(text) : text);
            candidates = undefined;
            return {};
          }
          const name = part.filename ?? 'attachment';
          const first = await run(buffer, name, ctx.signal);
          // An encrypted zip nothing opened yet: try again at the end, with every text part's passwords.
          if (first.report.findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED') && first.report.format === 'zip' &&
              deferred.length < (options.maxDeferred ?? 10)) {
            deferred.push({ part, name, data: buffer });
            return {};
          }
          return toFinding(first, config);
        },

        async finish(signal: AbortSignal): Promise<readonly InspectorFinding[]> {
          const out: InspectorFinding[] = [];
          for (const d of deferred) {
            if (signal.aborted) break;
            out.push({ ...toFinding(await run(d.data, d.name, signal), config), path: d.part.path });
          }
          return out;
        },
      };
    },
  };
}

/** What the scanner made of the entries only our passwords opened. */
interface Scanned {
  scans: { result: ScanResult['kind']; seconds: number }[];
  virus?: { signature: string; where: string };
  failure?: { reason: string; where: string };
}

function toFinding(r: { report: ArchiveReport } & Scanned, config: ArchiveConfig): InspectorFinding {
  const symbols: SymbolHit[] = archiveSymbols(r.report.findings, config);
  // The findings and scans as data, for the AV check reading the same walk.
  const data: InspectorFinding = {
    ...(r.report.findings.length ? { archive: r.report.findings } : {}),
    ...(r.scans.length ? { scans: r.scans } : {}),
    ...(r.virus ? { virus: r.virus } : {}),
    ...(r.failure ? { scanFailure: r.failure } : {}),
  };
  if (r.virus) {
    const { signature, where } = r.virus;
    symbols.push({ name: 'AV_VIRUS', reason: `${signature} in ${where} (decrypted)`, reply: R.policyReject(`Error: message refused: virus ${signature} in ${where}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)) });
    return { ...data, symbols, action: 'reject', reason: `virus ${signature} in ${where}` };
  }
  // clamd down while scanning a decrypted entry: AV_UNAVAILABLE, whose action (tempfail by default) decides.
  if (r.failure) symbols.push({ name: 'AV_UNAVAILABLE', reason: r.failure.reason, reply: reply(451, '4.3.0', 'Error: attachment scanning unavailable, try again later') });
  const exe = r.report.findings.find((f) => f.symbol === 'ARCHIVE_EXE');
  if (exe && config.executable_inside === 'strip') {
    return { ...data, symbols, action: 'strip', reason: `archive holds an executable: ${exe.path}` };
  }
  const enc = r.report.findings.find((f) => f.symbol === 'ARCHIVE_ENCRYPTED');
  if (enc && config.encrypted === 'strip') {
    return { ...data, symbols, action: 'strip', reason: `encrypted archive that cannot be scanned: ${enc.path}` };
  }
  return symbols.length ? { ...data, symbols } : data;
}

function decodeUtf8OrLatin1(b: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return b.toString('latin1');
  }
}
