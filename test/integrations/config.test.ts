// The integration listener kinds in `config check`: good spamd, scan-http, policy and
// dovecot-policy entries pass; a typo'd kind, a bad network in `allow`, a short password or
// api_header, a key of another kind are refused, each naming the key.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { baseConfig, runCli, showCli, type ConfigObject } from '../helpers/gateway.js';

describe('config check: integration listener kinds', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-scan-config-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const withListeners = (...extra: ConfigObject[]) => {
    const c = baseConfig({ mx: 2525, submission: 5870, submissions: 4650, pop3: 1100, pop3s: 9950, imap: 1430, imaps: 9930 }, '/tmp/portcullis-scan-config-data');
    return { ...c, listeners: [...(c.listeners as ConfigObject[]), ...extra] };
  };
  const check = async (name: string, doc: unknown) => {
    const file = path.join(dir, `${name}.yaml`);
    await fs.writeFile(file, YAML.stringify(doc));
    const r = await runCli(['config', 'check', file]);
    return { r, shown: showCli(['config', 'check', file], r) };
  };

  it('accepts spamd and scan-http listeners with their keys', async () => {
    const { r, shown } = await check('good', withListeners(
      { name: 'spamd', kind: 'spamd', port: 7830, allow: ['127.0.0.1', '10.0.0.0/8'], allow_tell: true, timeout: '10s' },
      { name: 'rspamd', kind: 'scan-http', port: 11333, password: 'a-long-secret' },
      { name: 'policy', kind: 'policy', port: 10040, allow: ['127.0.0.1', '10.0.0.0/8'], timeout: '10m', prepend_header: false },
      { name: 'dovecot', kind: 'dovecot-policy', port: 4001, api_header: 'X-API-Key: a-long-secret', timeout: '5s' },
      { name: 'dovecot2', kind: 'dovecot-policy', port: 4002, api_header: 'bare-secret-value' },
    ));
    assert.equal(r.code, 0, shown);
  });

  for (const [name, listener, key] of [
    ['a kind that does not exist', { name: 'x', kind: 'spamc', port: 7830 }, 'listeners[3].kind'],
    ['a network in allow that is none', { name: 'x', kind: 'spamd', port: 7830, allow: ['10.0.0.300/8'] }, 'listeners[3].allow[0]'],
    ['a password too short to be one', { name: 'x', kind: 'scan-http', port: 11333, password: 'short' }, 'listeners[3].password'],
    ['a key of the other kind', { name: 'x', kind: 'spamd', port: 7830, password: 'a-long-secret' }, 'password'],
    ['a scan key on an SMTP listener', { name: 'x', kind: 'mx', port: 2626, allow_tell: true }, 'allow_tell'],
    ['an api_header secret too short to be one', { name: 'x', kind: 'dovecot-policy', port: 4001, api_header: 'X-API-Key: short' }, 'listeners[3].api_header'],
    ['a dovecot-policy key on a policy listener', { name: 'x', kind: 'policy', port: 10040, api_header: 'X-API-Key: a-long-secret' }, 'api_header'],
    ['a network in a policy listener\'s allow that is none', { name: 'x', kind: 'policy', port: 10040, allow: ['10.0.0.300/8'] }, 'listeners[3].allow[0]'],
  ] as const) {
    it(`refuses ${name}, naming ${key}`, async () => {
      const { r, shown } = await check(name.replace(/\W/g, '_'), withListeners(listener as unknown as ConfigObject));
      assert.notEqual(r.code, 0, shown);
      assert.ok(`${r.stdout}${r.stderr}`.includes(key), `the message should name ${key}\n${shown}`);
    });
  }
});
