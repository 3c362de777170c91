// The relay battery shipped in the code, cross-checked against the shared conformance list
// (../shared/conformance/smtp/open-relay-battery.yaml, from nmap and the MAPS relay test): every
// case there is in the code, with the same MAIL FROM and RCPT TO forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relayBattery } from '../../test/helpers/conformance.js';
import { fillForm, RELAY_FORMS } from './relay-forms.js';
import { addressLiteral } from './relay-probe.js';

test('every case of the shared open-relay battery is in the shipped forms', () => {
  const shared = relayBattery();
  assert.ok(shared.length >= 20);
  for (const c of shared) {
    const form = RELAY_FORMS.find((f) => f.id === c.id);
    assert.ok(form, `case ${c.id} (${c.technique}) is missing`);
    assert.equal(form.mailFrom, c.mail_from, c.id);
    assert.equal(form.rcptTo, c.rcpt_to, c.id);
  }
  assert.equal(new Set(RELAY_FORMS.map((f) => f.id)).size, RELAY_FORMS.length, 'ids are unique');
});

test('forms are filled in with the server, the external domain and the address literal', () => {
  const values = { to: 'relaytest', from: 'audit', ext: 'example.com', srvname: 'mx.example.org', ip: addressLiteral('192.0.2.1'), domain: 'example.org' };
  const filled = RELAY_FORMS.map((f) => fillForm(f.rcptTo, values));
  assert.ok(filled.includes('relaytest%example.com@[192.0.2.1]'));
  assert.ok(filled.includes('@mx.example.org:relaytest@example.com'));
  assert.ok(filled.includes('example.com!relaytest@mx.example.org'));
  assert.ok(filled.includes('relaytest%example.com@example.org'));
  assert.ok(filled.includes('relaytest@EXAMPLE.COM'));
  assert.ok(filled.every((a) => !a.includes('{')), 'no placeholder left');
  assert.equal(addressLiteral('2001:db8::1'), 'IPv6:2001:db8::1');
  // Every direct form ends at the external domain.
  for (const f of RELAY_FORMS.filter((x) => x.direct)) assert.match(fillForm(f.rcptTo, values), /relaytest@example\.com\.?$/i, f.id);
});
