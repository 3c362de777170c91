#!/usr/bin/env node
// Prepare the benchmark's message set in OUTDIR/set/*.eml and describe it in OUTDIR/set.json.
//
//   node bench/corpus.mjs --tarball ../shared/corpus/sa2002-dev.tar.gz --out .bench/corpus
//
// The set follows shared/peers/README.md: every 5th spam and every 7th ham of the dev corpus,
// the mbox "From " line stripped, CRLF line endings. Messages with a line longer than 998
// octets (RFC 5321's limit) are left out so that no engine is measured rejecting them.
// The peers' set also had 8 generated malware samples; they are left out here because no
// engine in this benchmark runs an antivirus, so they would not be the same work for all.
// Without the tarball, one fixed 5 KB generated message is used, and set.json says so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    tarball: { type: 'string' },
    out: { type: 'string', default: '.bench/corpus' },
    'spam-step': { type: 'string', default: '5' },
    'ham-step': { type: 'string', default: '7' },
  },
});

const setDir = path.join(opt.out, 'set');
fs.rmSync(setDir, { recursive: true, force: true });
fs.mkdirSync(setDir, { recursive: true });

function normalise(buf) {
  let s = buf.toString('latin1');
  if (s.startsWith('From ')) s = s.slice(s.indexOf('\n') + 1);
  s = s.replace(/\r\n|\r|\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(s, 'latin1');
}

function generated(size = 5120) {
  const head = 'From: Load Generator <loadgen@loadgen.test>\r\nTo: <bench@bench.test>\r\n' +
    'Subject: portcullis benchmark message\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n' +
    'Message-ID: <bench-fixed@loadgen.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n';
  const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= size) body += line;
  return Buffer.from(head + body, 'latin1');
}

const meta = { source: '', count: 0, spam: 0, ham: 0, mean_bytes: 0, excluded_long_lines: [], dot_lines: 0, eight_bit: 0, note: '' };
let sizes = [];

if (opt.tarball && fs.existsSync(opt.tarball)) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-corpus-'));
  try {
    const r = spawnSync('tar', ['-xzf', opt.tarball, '-C', tmp], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`tar failed with status ${r.status}`);
    const picks = [['spam', Number(opt['spam-step']), 500], ['ham', Number(opt['ham-step']), 2750]];
    for (const [label, step, max] of picks) {
      for (let i = step; i <= max; i += step) {
        const name = `${label}/${String(i).padStart(4, '0')}.eml`;
        const file = path.join(tmp, name);
        if (!fs.existsSync(file)) continue;
        const msg = normalise(fs.readFileSync(file));
        const longest = Math.max(...msg.toString('latin1').split('\r\n').map((l) => l.length));
        if (longest > 998) { meta.excluded_long_lines.push(name); continue; }
        fs.writeFileSync(path.join(setDir, `${label}-${String(i).padStart(4, '0')}.eml`), msg);
        meta[label]++;
        sizes.push(msg.length);
        if (/(^|\r\n)\./.test(msg.toString('latin1'))) meta.dot_lines++;
        if (msg.some((b) => b > 127)) meta.eight_bit++;
      }
    }
    meta.source = `${path.basename(opt.tarball)}: every ${opt['spam-step']}th spam and every ${opt['ham-step']}th ham`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (sizes.length === 0) {
  const msg = generated();
  fs.writeFileSync(path.join(setDir, 'generated-0001.eml'), msg);
  sizes = [msg.length];
  meta.source = 'generated';
  meta.note = `corpus tarball not found (${opt.tarball || 'none given'}): one fixed ${msg.length}-byte generated message`;
}

meta.count = sizes.length;
meta.mean_bytes = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
fs.writeFileSync(path.join(opt.out, 'set.json'), JSON.stringify(meta, null, 2) + '\n');
process.stdout.write(JSON.stringify(meta) + '\n');
