// A small HTTPS client for the console tests: a cookie jar, form posts, and the CSRF token
// read from the last page. Self-signed certificate accepted (the test gateway's own).
import https from 'node:https';
import { freePorts, tcpAccepts, waitFor } from '../helpers/wait.js';
import { startGateway, type Gateway, type GatewayOptions, type ConfigObject } from '../helpers/gateway.js';

export interface Page {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  last?: Page;

  constructor(readonly port: number) {}

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  request(method: string, path: string, form?: Record<string, string>, extraHeaders: Record<string, string> = {}): Promise<Page> {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: this.port, method, path, rejectUnauthorized: false,
        headers: {
          ...(this.cookies.size ? { cookie: this.cookieHeader } : {}),
          ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}),
          ...extraHeaders,
        },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => {
          for (const c of [res.headers['set-cookie'] ?? []].flat()) {
            const [pair] = c.split(';');
            const i = pair!.indexOf('=');
            this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
          }
          const page = { status: res.statusCode ?? 0, headers: res.headers, body: text };
          this.last = page;
          resolve(page);
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  get(path: string): Promise<Page> {
    return this.request('GET', path);
  }

  /** The CSRF token of the last page (or of `page`). */
  csrf(page = this.last): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(page?.body ?? '');
    if (!m) throw new Error(`no CSRF token on the page:\n${page?.body.slice(0, 500)}`);
    return m[1]!;
  }

  /** Posts a form with the CSRF token of the last page. */
  async post(path: string, form: Record<string, string>): Promise<Page> {
    return this.request('POST', path, { _csrf: this.csrf(), ...form });
  }

  async login(user: string, password: string): Promise<Page> {
    await this.get('/login');
    return this.post('/login', { user, password });
  }
}

export const ADMIN = { address: 'admin@example.test', password: 'Rk8#vW3q-Hs6tNb2' } as const;

/** A gateway with the console on a free port; `consolePort` is where it listens. */
export async function startConsoleGateway(opts: GatewayOptions & { console?: ConfigObject } = {}): Promise<{ gw: Gateway; consolePort: number }> {
  const [consolePort] = await freePorts(1);
  const extra = opts.config;
  const gw = await startGateway({
    ...opts,
    users: { [ADMIN.address]: ADMIN.password, ...(opts.users ?? {}) },
    config: (ctx) => ({
      ...(typeof extra === 'function' ? extra(ctx) : extra ?? {}),
      console: { enabled: true, address: '127.0.0.1', port: consolePort!, admins: [ADMIN.address], ...(opts.console ?? {}) },
    }),
  });
  await waitFor('the console to accept TCP', () => tcpAccepts(consolePort!), { timeoutMs: 15_000, intervalMs: 100 });
  return { gw, consolePort: consolePort! };
}
