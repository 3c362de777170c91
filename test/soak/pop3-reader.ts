// The soak's POP3 reader: one session over implicit TLS, as a mail client polls (USER, PASS,
// STAT, RETR 1 when there is a message, QUIT).
import tls from 'node:tls';

export /** One POP3 session over implicit TLS: USER, PASS, STAT, RETR 1 (when there is one), QUIT. */
function pop3Read(port: number, user: string, pass: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error('POP3 session timed out')), 15_000);
    // What to send after each +OK line; RETR's reply is a line and the message up to "\r\n.\r\n".
    const steps: (string | ((line: string) => string))[] = [`USER ${user}`, `PASS ${pass}`, 'STAT', (stat) => (Number(/^\+OK (\d+)/.exec(stat)?.[1] ?? 0) > 0 ? 'RETR 1' : 'QUIT')];
    let buf = '';
    let multiline = false;
    let quitting = false;
    s.on('error', fail);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      for (;;) {
        if (multiline) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buf = buf.slice(end + 5);
          multiline = false;
          quitting = true;
          s.write('QUIT\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!line.startsWith('+OK')) return fail(new Error(`POP3: ${line}`));
        if (quitting) {
          clearTimeout(timer);
          s.end();
          return resolve();
        }
        const step = steps.shift();
        const cmd = typeof step === 'function' ? step(line) : step ?? 'QUIT';
        if (cmd === 'QUIT') quitting = true;
        if (cmd === 'RETR 1') multiline = true;
        s.write(`${cmd}\r\n`);
      }
    });
  });
}
