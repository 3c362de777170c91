// The control socket: a unix socket in the data directory through which the CLI asks a running
// gateway to act on its queue (Postfix's postqueue talks to the master the same way). One JSON
// request per connection, one JSON answer. The socket is mode 0600: root or the gateway's user.
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';

export type ControlRequest = { cmd: string; args?: Record<string, unknown> };
export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

export function controlPath(dataDir: string): string {
  return path.join(dataDir, 'control.sock');
}

export async function serveControl(dataDir: string, handler: ControlHandler): Promise<net.Server> {
  const file = controlPath(dataDir);
  fs.rmSync(file, { force: true });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 65_536) return sock.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        sock.end(`${JSON.stringify({ ok: false, error: 'bad request' })}\n`);
        return;
      }
      handler(req).then(
        (result) => sock.end(`${JSON.stringify({ ok: true, result })}\n`),
        (err: Error) => sock.end(`${JSON.stringify({ ok: false, error: err.message })}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  fs.chmodSync(file, 0o600);
  return server;
}

/** Sends one request; resolves undefined when no gateway listens (the CLI then works offline). */
export function callControl(dataDir: string, req: ControlRequest, timeoutMs = 30_000): Promise<{ ok: boolean; result?: unknown; error?: string } | undefined> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(controlPath(dataDir));
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error('the gateway did not answer on its control socket'));
    });
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d: string) => (buf += d));
    sock.on('end', () => {
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new Error('bad answer from the gateway control socket'));
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
      else reject(err);
    });
  });
}
