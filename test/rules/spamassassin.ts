// Runs Debian's `spamassassin` (local tests only) over a set of messages in one process
// (`--mbox`) and returns, per message, the rules it reported. The site configuration turns
// network tests, Bayes and the auto-welcomelist off and adds an X-Spam-Tests header listing the
// hits; each message carries an X-Diff-Id header to match SpamAssassin's output to it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

export function findSpamassassin(): string | undefined {
  for (const p of ['/usr/bin/spamassassin', '/usr/local/bin/spamassassin']) if (fs.existsSync(p)) return p;
  return undefined;
}

export interface DiffMessage {
  readonly id: string;
  /** The message with its X-Diff-Id header, without an mbox "From " line. */
  readonly raw: Buffer;
}

/** Messages from files (mbox "From " line removed, X-Diff-Id added); those holding a "From " line in the body are left out. */
export function diffMessages(files: readonly { id: string; file: string }[]): DiffMessage[] {
  const out: DiffMessage[] = [];
  for (const { id, file } of files) {
    let text = fs.readFileSync(file).toString('latin1');
    if (text.startsWith('From ')) text = text.slice(text.indexOf('\n') + 1);
    if (/\n>?From /.test(text)) continue; // the mbox would split it
    out.push({ id, raw: Buffer.from(`X-Diff-Id: ${id}\n${text}`, 'latin1') });
  }
  return out;
}

/**
 * A site configuration in `work` for local tests only (no network, Bayes or auto-welcomelist,
 * nothing marked spam), with `lines` added; --siteconfigpath replaces /etc/spamassassin, whose
 * *.pre files are copied so that the standard plugins load.
 */
export function siteConfig(work: string, lines: readonly string[]): { site: string; localCf: string } {
  const site = path.join(work, 'site');
  fs.mkdirSync(site);
  for (const f of fs.readdirSync('/etc/spamassassin').filter((n) => n.endsWith('.pre'))) fs.copyFileSync(path.join('/etc/spamassassin', f), path.join(site, f));
  const localCf = path.join(site, 'local.cf');
  fs.writeFileSync(localCf, [
    'dns_available no', 'skip_rbl_checks 1', 'use_razor2 0', 'use_pyzor 0', 'use_dcc 0', 'use_bayes 0', 'use_auto_welcomelist 0',
    'required_score 1000', 'clear_headers', ...lines, '',
  ].join('\n'));
  return { site, localCf };
}

/**
 * SpamAssassin's hits per message id. `rulesDir` replaces the stock rules folder (-C) unless
 * it is undefined (then the stock rules run).
 */
export function runSpamassassin(sa: string, messages: readonly DiffMessage[], rulesDir: string | undefined, timeoutMs = 100_000): Map<string, string[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-sa-'));
  try {
    const { site, localCf } = siteConfig(work, ['add_header all Tests _TESTS(,)_']);
    const mbox = messages.map((m) => `From diff@example.org  Thu Aug 22 13:17:22 2002\n${m.raw.toString('latin1').replace(/\n*$/, '\n')}\n`).join('');
    const args = ['-L', ...(rulesDir ? ['-C', rulesDir] : []), '--siteconfigpath', site, '-p', localCf, '--mbox'];
    const run = spawnSync(sa, args, { input: Buffer.from(mbox, 'latin1'), maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs });
    if (run.status !== 0) throw new Error(`spamassassin failed (${run.status ?? run.signal}): ${run.stderr?.toString().slice(0, 500)}`);
    const hits = new Map<string, string[]>();
    for (const block of run.stdout.toString('latin1').split(/\n(?=From diff@example\.org {2})/)) {
      const end = block.search(/\n\r?\n/);
      const head = end < 0 ? block : block.slice(0, end + 1);
      const id = /^X-Diff-Id: (\S+)/m.exec(head)?.[1];
      const tests = /^X-Spam-Tests: (.*(?:\n[ \t].*)*)/m.exec(head)?.[1]?.replace(/\s+/g, '') ?? '';
      if (id) hits.set(id, tests && tests !== 'none' ? tests.split(',').sort() : []);
    }
    return hits;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
