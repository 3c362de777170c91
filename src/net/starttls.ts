// The server side of STARTTLS (SMTP, RFC 3207), STARTTLS (IMAP, RFC 9051 s6.2.1) and STLS (POP3,
// RFC 2595): the session hands over its accepted plain socket and gets a TLS socket once the
// handshake is done. One copy for the three protocols, so that each gets the same care: the plain
// socket's listeners go (nothing read in clear can reach the session afterwards), and the
// handshake is bounded in time — a client that says STARTTLS and then stays silent is dropped
// like an idle one, never held open forever.
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';

export interface ServerTlsUpgrade {
  /** The handshake's time limit (ms): the session's idle timeout. */
  readonly timeoutMs: number;
  /** The handshake is done: the session attaches its handlers to `secure`. */
  readonly onSecure: (secure: tls.TLSSocket) => void;
  /** The handshake failed or timed out: logged (`tls_failed`) and both sockets destroyed already. */
  readonly onFail: (err: Error) => void;
  /** The session's logger, for the one `tls_failed` line. */
  readonly log: Pick<Logger, 'info'>;
}

export function upgradeToTls(plain: net.Socket, options: tls.TlsOptions, up: ServerTlsUpgrade): tls.TLSSocket {
  plain.removeAllListeners('data');
  plain.removeAllListeners('timeout');
  plain.removeAllListeners('close');
  plain.setTimeout(0);
  const secure = new tls.TLSSocket(plain, { ...options, isServer: true });
  let settled = false;
  const timer = setTimeout(() => fail(new Error(`TLS handshake timed out after ${Math.round(up.timeoutMs / 1000)} s`)), up.timeoutMs);
  timer.unref();
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    up.log.info({ event: 'tls_failed', err: err.message }, 'TLS handshake failed');
    secure.destroy();
    plain.destroy();
    up.onFail(err);
  };
  secure.once('error', fail);
  secure.once('secure', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    secure.removeListener('error', fail);
    up.onSecure(secure);
  });
  return secure;
}
