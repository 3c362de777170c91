import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferModel } from '../../mime/model.js';
import { parseHeaderBlock } from '../../protocol/headers.js';
import { requiredHeaders } from './required-headers.js';

async function names(head: string): Promise<string[]> {
  const raw = Buffer.from(`${head.replace(/\n/g, '\r\n')}\r\n\r\nbody\r\n`);
  const headers = parseHeaderBlock(raw.subarray(0, raw.indexOf('\r\n\r\n') + 2));
  const r = await requiredHeaders.run({ message: { ...bufferModel(raw, { maxScanBytes: 1 << 20 }), headers, bareNewlines: 0 } } as never);
  return (r.symbols ?? []).map((s) => s.name);
}

const RCVD = 'Received: from a.example.net by mx.example.org; Mon, 7 Dec 2026 10:00:00 +0000';

test('DATE_IN_FUTURE: a Date more than 12 hours after the newest Received, or after now when there is none', async () => {
  const base = 'From: a@example.net\nMessage-ID: <1@example.net>';
  assert.deepEqual(await names(`${RCVD}\n${base}\nDate: Tue, 8 Dec 2026 09:00:00 +0000`), ['DATE_IN_FUTURE']);
  assert.deepEqual(await names(`${RCVD}\n${base}\nDate: Mon, 7 Dec 2026 21:00:00 +0000`), [], '11 hours ahead: clocks and zones');
  assert.deepEqual(await names(`${RCVD}\n${base}\nDate: Mon, 7 Dec 2026 15:00:00 -0800`), ['DATE_IN_FUTURE'], 'the zone counts');
  assert.deepEqual(await names(`${RCVD}\n${base}\nDate: Thu, 1 Jan 2026 00:00:00 +0000`), [], 'an old Date is not flagged');
  assert.deepEqual(await names(`${base}\nDate: ${new Date(Date.now() + 2 * 86400_000).toUTCString()}`), ['DATE_IN_FUTURE']);
  assert.deepEqual(await names(`${base}\nDate: ${new Date().toUTCString()}`), []);
  assert.deepEqual(await names(`${RCVD}\n${base}\nDate: not a date`), []);
});

test('the required fields: Date, From (once), Message-ID', async () => {
  assert.deepEqual(await names('Subject: x'), ['MISSING_DATE', 'MISSING_FROM', 'MISSING_MESSAGE_ID']);
  assert.deepEqual(await names(`From: a@example.net\nFrom: b@example.net\nMessage-ID: <1@x>\nDate: ${new Date().toUTCString()}`), ['MULTIPLE_FROM']);
});
