import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferModel } from '../../mime/model.js';
import { GTUBE_STRING, gtubeCheck } from './gtube.js';

async function names(raw: string): Promise<string[]> {
  const r = await gtubeCheck.run({ message: bufferModel(Buffer.from(raw), { maxScanBytes: 1 << 20 }), facts: {} } as never);
  return (r.symbols ?? []).map((s) => s.name);
}

test('GTUBE in a plain body, inside HTML, base64-encoded, or in the Subject', async () => {
  assert.deepEqual(await names(`Subject: t\r\n\r\nbefore ${GTUBE_STRING} after\r\n`), ['GTUBE']);
  assert.deepEqual(await names(`Subject: t\r\nContent-Type: text/html\r\n\r\n<p><b>${GTUBE_STRING}</b></p>\r\n`), ['GTUBE']);
  assert.deepEqual(await names(`Subject: t\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(GTUBE_STRING).toString('base64')}\r\n`), ['GTUBE']);
  assert.deepEqual(await names(`Subject: ${GTUBE_STRING}\r\n\r\nx\r\n`), ['GTUBE']);
});

test('no GTUBE: ordinary text, a broken string, the string only in a header other than Subject', async () => {
  assert.deepEqual(await names('Subject: t\r\n\r\nhello\r\n'), []);
  assert.deepEqual(await names(`Subject: t\r\n\r\n${GTUBE_STRING.replace('GTUBE', 'GTUBF')}\r\n`), []);
  assert.deepEqual(await names(`Subject: t\r\nX-Note: ${GTUBE_STRING}\r\n\r\nx\r\n`), []);
});
