// A UDP DNS proxy in front of a test DNS server (test/helpers/dns-server.ts) that makes the
// resolver's server slow (every answer held back `delayMs`) or silent (questions read, never
// answered): the DNS faults of test/faults/dns-slow.test.ts and the soak.
import dgram from 'node:dgram';

/** A UDP DNS proxy that delays every answer by `delayMs`, or drops them all when `silent`. */
export class SlowDns {
  delayMs = 0;
  silent = false;
  answered = 0;
  dropped = 0;
  private constructor(private readonly sock: dgram.Socket, readonly port: number) {}

  static async start(target: number): Promise<SlowDns> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const p = new SlowDns(sock, sock.address().port);
    sock.on('message', (query, from) => {
      if (p.silent) {
        p.dropped++;
        return;
      }
      const up = dgram.createSocket('udp4');
      up.on('message', (answer) => {
        up.close();
        setTimeout(() => {
          p.answered++;
          sock.send(answer, from.port, from.address);
        }, p.delayMs);
      });
      up.on('error', () => up.close());
      setTimeout(() => {
        try {
          up.close();
        } catch {
          // answered and closed already
        }
      }, 10_000).unref();
      up.send(query, target, '127.0.0.1');
    });
    return p;
  }

  close(): void {
    this.sock.close();
  }
}
