// Archive inspection as an inspector of the shared MIME walker (src/mime/inspector.ts): the
// attachment check hands it every archive part (decoded, bounded) and every text part; it
// answers with ARCHIVE_* symbols and the archive policy's action on the part (strip an archive
// holding an executable, or an encrypted one nobody can open; refusing the message is
// policy.actions' call on ARCHIVE_EXE / ARCHIVE_ENCRYPTED, whose hits carry the reply). Encrypted zips wait for
// finish(), when every text part (where the password usually is) has been seen; their decrypted
// entries go to clamd, since clamd cannot open them itself. With this inspector in the attachment
// check, give the AV check `archiveSymbols: false`.
import type { Readable } from 'node:stream';
import type { SymbolHit } from '../types.js';
import type { FileType } from '../../mime/filetype.js';
import { readBounded, type Inspector, type InspectorFinding, type MessageInspection, type PartInfo } from '../../mime/inspector.js';
import { inspectArchive, type ArchiveReport } from '../../mime/archive.js';
import { archiveFormatFromName } from '../../mime/archive-types.js';
import { htmlToText, passwordCandidates } from './passwords.js';
import { archiveLimits, type ArchiveConfig } from '../av/config.js';
import { archiveSymbols } from '../av/av-check.js';
import type { ClamdClient } from '../av/clamd.js';
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
      const run = (data: Buffer, name: string, signal: AbortSignal, scan: boolean) => {
        const found: { virus?: string; where?: string; failure?: string } = {};
        return inspectArchive(data, name, {
          limits: archiveLimits(config), passwords: passwords(), bsdtar: config.bsdtar || false, signal,
          onEntry: scan && options.clamd ? async (entry, content) => {
            if (!entry.decrypted || found.virus || found.failure) return;
            const r = await options.clamd!.scanBuffer(content);
            if (r.kind === 'virus') Object.assign(found, { virus: r.signature, where: entry.path });
            else if (r.kind === 'unavailable' || r.kind === 'error') found.failure = r.reason;
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
          const first = await run(buffer, name, ctx.signal, false);
          // An encrypted zip nothing opened yet: try again at the end, with every text part's passwords.
          if (first.report.findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED') && first.report.format === 'zip' &&
              deferred.length < (options.maxDeferred ?? 10)) {
            deferred.push({ part, name, data: buffer });
            return {};
          }
          if (first.report.findings.some((f) => f.symbol === 'ARCHIVE_ENCRYPTED_OPENED') && options.clamd) {
            return toFinding(await run(buffer, name, ctx.signal, true), config, options);
          }
          return toFinding(first, config, options);
        },

        async finish(signal: AbortSignal): Promise<readonly InspectorFinding[]> {
          const out: InspectorFinding[] = [];
          for (const d of deferred) {
            if (signal.aborted) break;
            out.push({ ...toFinding(await run(d.data, d.name, signal, true), config, options), path: d.part.path });
          }
          return out;
        },
      };
    },
  };
}

function toFinding(
  r: { report: ArchiveReport; virus?: string; where?: string; failure?: string },
  config: ArchiveConfig, options: ArchiveInspectorOptions,
): InspectorFinding {
  const symbols: SymbolHit[] = archiveSymbols(r.report.findings, config);
  if (r.virus) {
    symbols.push({ name: 'AV_VIRUS', reason: `${r.virus} in ${r.where} (decrypted)`, reply: R.policyReject(`Error: message refused: virus ${r.virus} in ${r.where}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)) });
    return { symbols, action: 'reject', reason: `virus ${r.virus} in ${r.where}` };
  }
  // clamd down while scanning a decrypted entry: AV_UNAVAILABLE, whose action (tempfail by default) decides.
  if (r.failure) symbols.push({ name: 'AV_UNAVAILABLE', reason: r.failure, reply: reply(451, '4.3.0', 'Error: attachment scanning unavailable, try again later') });
  const exe = r.report.findings.find((f) => f.symbol === 'ARCHIVE_EXE');
  if (exe && config.executable_inside === 'strip') {
    return { symbols, action: 'strip', reason: `archive holds an executable: ${exe.path}` };
  }
  const enc = r.report.findings.find((f) => f.symbol === 'ARCHIVE_ENCRYPTED');
  if (enc && config.encrypted === 'strip') {
    return { symbols, action: 'strip', reason: `encrypted archive that cannot be scanned: ${enc.path}` };
  }
  return symbols.length ? { symbols } : {};
}

function decodeUtf8OrLatin1(b: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return b.toString('latin1');
  }
}
