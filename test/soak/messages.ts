// The soak's messages: a unique token in a header and the body, the body's length and SHA-256
// in the header (read back by checkCopy in test/crash/load.ts), a few lines that start with a dot.
import crypto from 'node:crypto';

/** A message from `from` to the addresses `to`, with a body of about `bodyBytes`. */
export function testMessage(from: string, to: readonly string[], bodyBytes: number): { token: string; wire: Buffer; sha: string } {
  const token = crypto.randomUUID();
  const lines = [`token ${token} begins`];
  let size = 0;
  while (size < bodyBytes) {
    const line = crypto.randomInt(40) === 0 ? '.a line that starts with a dot' : `${crypto.randomBytes(45).toString('base64')} words ${crypto.randomInt(1e6)}`;
    lines.push(line);
    size += line.length + 2;
  }
  lines.push(`token ${token} ends`);
  const body = `${lines.join('\r\n')}\r\n`;
  const sha = crypto.createHash('sha256').update(body).digest('hex');
  const headers = [
    `From: Soak <${from}>`, `To: ${to.map((a) => `<${a}>`).join(', ')}`, `Subject: soak ${token.slice(0, 8)}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`, `Message-ID: <${token}@sender.test>`, 'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii', `X-Token: ${token}`, `X-Body-Length: ${Buffer.byteLength(body)}`, `X-Body-SHA256: ${sha}`,
  ];
  const raw = `${headers.join('\r\n')}\r\n\r\n${body}`;
  return { token, sha, wire: Buffer.from(`${raw.replace(/^\./gm, '..')}.\r\n`, 'latin1') };
}
