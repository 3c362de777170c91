// The policy listener kinds in `config check`: good `policy` and `dovecot-policy` entries pass;
// a weak api_header, a key of the other kind, a bad network in `allow` are refused, each
// naming the key.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { baseConfig, runCli, showCli, type ConfigObject } from '../helpers/gateway.js';

describe('config check: policy listener kinds', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-policy-config-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const withListeners = (...extra: ConfigObject[]) => {
    const c = baseConfig({ mx: 2525, submission: 5870, submissions: 4650, pop3: 1100, pop3s: 9950, imap: 1430, imaps: 9930 }, '/tmp/portcullis-policy-config-data');
    return { ...c, listeners: [...(c.listeners as ConfigObject[]), ...extra] };
  };
  const check = async (name: string, doc: unknown) => {
    const file = path.join(dir, `${name}.yaml`);
    await fs.writeFile(file, YAML.stringify(doc));
    const r = await runCli(['config', 'check', file]);
    return { r, shown: showCli(['config', 'check', file], r) };
  };

  it('accepts policy and dovecot-policy listeners with their keys', async () => {
    const { r, shown } = await check('good', withListeners(
      { name: 'policy', kind: 'policy', port: 10040, allow: ['127.0.0.1', '10.0.0.0/8'], timeout: '10m', prepend_header: false },
      { name: 'dovecot', kind: 'dovecot-policy', port: 4001, api_header: 'X-API-Key: a-long-secret', timeout: '5s' },
      { name: 'dovecot2', kind: 'dovecot-policy', port: 4002, api_header: 'bare-secret-value' },
    ));
    assert.equal(r.code, 0, shown);
  });

  for (const [name, listener, key] of [
    ['an api_header secret too short to be one', { name: 'x', kind: 'dovecot-policy', port: 4001, api_header: 'X-API-Key: short' }, 'listeners[3].api_header'],
    ['a key of the other kind', { name: 'x', kind: 'policy', port: 10040, api_header: 'X-API-Key: a-long-secret' }, 'api_header'],
    ['a network in allow that is none', { name: 'x', kind: 'policy', port: 10040, allow: ['10.0.0.300/8'] }, 'listeners[3].allow[0]'],
  ] as const) {
    it(`refuses ${name}, naming ${key}`, async () => {
      const { r, shown } = await check(name.replace(/\W/g, '_'), withListeners(listener as unknown as ConfigObject));
      assert.notEqual(r.code, 0, shown);
      assert.ok(`${r.stdout}${r.stderr}`.includes(key), `the message should name ${key}\n${shown}`);
    });
  }
});
