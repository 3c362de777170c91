// Loads the third-party conformance data in <repo>/../shared/conformance (read only).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { sharedDir } from './paths.js';

export interface RelayCase {
  id: string;
  source: string;
  mail_from: string;
  rcpt_to: string;
  technique: string;
}

export interface EodSequence {
  id: string;
  bytes_hex: string;
  c_escaped: string;
  sources: string[];
  note?: string;
}

export interface StartTlsInjection {
  id: string;
  server_side_test: { send_in_one_write: string; further_probes_suggested: string[] };
}

function load<T>(rel: string): T {
  const file = path.join(sharedDir, 'conformance', rel);
  if (!fs.existsSync(file)) throw new Error(`conformance file missing: ${file} (shared/ must sit beside the repository)`);
  return YAML.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function relayBattery(): RelayCase[] {
  const doc = load<{ cases: RelayCase[] }>('smtp/open-relay-battery.yaml');
  if (!Array.isArray(doc.cases) || doc.cases.length === 0) throw new Error('open-relay-battery.yaml has no cases');
  return doc.cases;
}

export function eodSequences(): EodSequence[] {
  const doc = load<{ sequences: EodSequence[] }>('smtp/smtp-smuggling-eod-sequences.yaml');
  if (!Array.isArray(doc.sequences) || doc.sequences.length === 0) throw new Error('smtp-smuggling-eod-sequences.yaml has no sequences');
  return doc.sequences;
}

export function startTlsInjection(): StartTlsInjection {
  return load<StartTlsInjection>('smtp/starttls-command-injection.yaml');
}

/** "0d 0a 2e" → Buffer. */
export function hexBytes(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}

/** Substitutes {to} {from} {ext} {srvname} {ip} in a battery address. */
export function fillPlaceholders(text: string, values: Record<string, string>): string {
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`no value for placeholder ${whole} in ${JSON.stringify(text)}`);
    return v;
  });
}
