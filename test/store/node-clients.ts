// What the multi-node store tests ask each gateway node: a login over submissions and a greeting
// on the MX port, each from a chosen loopback address (limits and blocks are per client address).
import { plainToken } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { SmtpClient } from '../helpers/smtp-client.js';

/** The reply code to AUTH PLAIN as `user` over implicit TLS from `localAddress`. */
export async function authCode(gw: Gateway, localAddress: string, user: string, password: string): Promise<number> {
  // SmtpClient's localAddress is for plain connections; over implicit TLS it goes in tlsOptions.
  const c = await SmtpClient.connect(gw.ports.submissions, { implicitTls: true, tlsOptions: { localAddress } as never });
  try {
    await c.ehlo('client.example.net');
    return (await c.cmd(`AUTH PLAIN ${plainToken(user, password)}`, 20_000)).code;
  } finally {
    c.close();
  }
}

/** The greeting a new connection to the MX port from `localAddress` gets. */
export async function greeting(gw: Gateway, localAddress: string): Promise<string> {
  const c = await SmtpClient.connect(gw.ports.mx, { localAddress });
  try {
    return c.greeting!.raw;
  } finally {
    c.close();
  }
}
