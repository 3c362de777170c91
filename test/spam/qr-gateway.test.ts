// Quishing through the running gateway: a message whose only link is the QR code of an inline
// image, composed and sent by nodemailer as a mail client would, is tagged with the QR symbols
// in the stored copy's X-Spam-* fields; the same message with the QR image replaced by a photo
// carries none of them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import QRCode from 'qrcode';
import { PNG } from 'pngjs';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { mailer } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';

/** The header block of the stored copy of the message marked `mark`. */
function storedHeader(gw: Gateway, mark: string): string | undefined {
  const hit = gw.allMailboxFiles().find((m) => m.content.includes(mark));
  if (!hit) return undefined;
  const text = hit.content.toString('latin1');
  return text.slice(0, text.search(/\r?\n\r?\n/));
}

async function sendWithImage(gw: Gateway, mark: string, image: Buffer): Promise<void> {
  const transport = mailer({ port: gw.ports.mx, ignoreTLS: true });
  try {
    await transport.sendMail({
      envelope: { from: 'it-desk@mailbox-notice.example', to: [USERS.alice.address] },
      from: '"IT Service Desk" <it-desk@mailbox-notice.example>',
      to: USERS.alice.address,
      subject: `Action required: re-validate your mailbox ${mark}`,
      text: 'Your mailbox password expires today. Scan the code below with your phone to keep access.',
      html: '<p>Your mailbox password expires today. Scan the code below with your phone to keep access.</p><img src="cid:code@desk">',
      attachments: [{ filename: 'code.png', content: image, cid: 'code@desk', contentDisposition: 'inline' }],
    });
  } finally {
    transport.close();
  }
}

describe('QR codes through the gateway', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let dns: DnsServer;

  before(async () => {
    // A DNS server that answers NXDOMAIN for everything: no network test decides here.
    dns = await startDnsServer({});
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [dns.server] },
        // Delivered whatever the score, so that the stored fields can be read.
        policy: { thresholds: { tag: 5, junk: 8, reject: 100 } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  it('an inline QR code linking to a look-alike with the recipient\'s address: the QR symbols in X-Spam-*', async () => {
    const mark = marker('qr');
    const link = `https://login.micros0ft.com/common/oauth2/#${USERS.alice.address}`;
    await sendWithImage(gw, mark, await QRCode.toBuffer(link, { type: 'png', scale: 6 }));
    const header = await waitFor('delivered', () => storedHeader(gw, mark));
    for (const name of ['QR_CODE_LINK', 'QR_CODE_SUSPICIOUS_LINK', 'QR_CODE_RECIPIENT']) assert.match(header, new RegExp(`^X-Spam-[\\w-]+:[^]*\\b${name}\\b`, 'm'), header);
    assert.match(header, /^X-Spam-Status: Yes, score=\d/m, header);
  });

  it('the same message with a picture that holds no QR code carries no QR symbol', async () => {
    const mark = marker('noqr');
    const photo = new PNG({ width: 240, height: 160 });
    for (let y = 0; y < 160; y++) for (let x = 0; x < 240; x++) photo.data.writeUInt32BE((((x & 0xff) << 24) | ((y & 0xff) << 16) | (((x * y) & 0xff) << 8) | 0xff) >>> 0, (y * 240 + x) * 4);
    await sendWithImage(gw, mark, PNG.sync.write(photo));
    const header = await waitFor('delivered', () => storedHeader(gw, mark));
    assert.match(header, /^X-Spam-Status: /m, header);
    assert.doesNotMatch(header, /QR_CODE_/, header);
  });
});
