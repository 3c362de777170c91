// What the multi-node store tests (and the IPv6 and DNS-defence tests) ask a gateway: a login
// over submissions, a greeting on the MX port and a message delivered to alice, each from a
// chosen client address (limits, blocks and DNS lists are per client address). `at` names
// another listener than the gateway's own 127.0.0.1 ones (e.g. one on ::1).
import { assertReply, EXT_SENDER, plainToken, USERS } from '../helpers/fixtures.js';
import type { Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { dataBlock, SmtpClient } from '../helpers/smtp-client.js';

export interface At {
  readonly port: number;
  readonly host: string;
}

/** The reply code to AUTH PLAIN as `user` over implicit TLS from `localAddress`. */
export async function authCode(gw: Gateway, localAddress: string, user: string, password: string, at?: At): Promise<number> {
  // SmtpClient's localAddress is for plain connections; over implicit TLS it goes in tlsOptions.
  const c = await SmtpClient.connect(at?.port ?? gw.ports.submissions, { host: at?.host, implicitTls: true, tlsOptions: { localAddress } as never });
  try {
    await c.ehlo('client.example.net');
    return (await c.cmd(`AUTH PLAIN ${plainToken(user, password)}`, 20_000)).code;
  } finally {
    c.close();
  }
}

/** The greeting a new connection to the MX port from `localAddress` gets. */
export async function greeting(gw: Gateway, localAddress: string, at?: At): Promise<string> {
  const c = await SmtpClient.connect(at?.port ?? gw.ports.mx, { host: at?.host, localAddress });
  try {
    return c.greeting!.raw;
  } finally {
    c.close();
  }
}

/** Sends one message from EXT_SENDER to alice over the MX port from `localAddress`; resolves with it as delivered. */
export async function deliverFrom(gw: Gateway, localAddress: string, opts: { helo?: string; tag?: string; at?: At } = {}): Promise<string> {
  const c = await SmtpClient.connect(opts.at?.port ?? gw.ports.mx, { host: opts.at?.host, localAddress });
  await c.ehlo(opts.helo ?? 'client.example.net');
  const subject = marker(opts.tag ?? 'from');
  assertReply(await c.cmd(`MAIL FROM:<${EXT_SENDER}>`), 250, undefined, c.describe());
  assertReply(await c.cmd(`RCPT TO:<${USERS.alice.address}>`), 250, undefined, c.describe());
  assertReply(await c.cmd('DATA'), 354);
  c.write(dataBlock(makeMessage({ from: EXT_SENDER, to: USERS.alice.address, subject })));
  assertReply(await c.readReply(), 250, '2.0.0', c.describe());
  await c.quit();
  return (await gw.waitForMail(USERS.alice.address, subject)).toString();
}
