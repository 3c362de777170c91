// The integration listener kinds in `config check`: good spamd, scan-http, policy,
// dovecot-policy and milter (TCP and unix-socket) entries pass; a typo'd kind, a bad network in
// `allow`, a short password or api_header, a milter with neither or both of port and path, an
// unknown on_error, a key of another kind, two listeners on one socket are refused, each naming the key.
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
      { name: 'milter', kind: 'milter', port: 8891, allow: ['127.0.0.1', '10.0.0.0/8'], timeout: '5m', on_error: 'accept', max_connections: 20 },
      { name: 'milter-unix', kind: 'milter', path: '/tmp/portcullis-milter.sock' },
      { name: 'milter-unix2', kind: 'milter', path: '/tmp/portcullis-milter2.sock' },
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
    ['a milter with neither port nor path', { name: 'x', kind: 'milter' }, 'listeners[3].port'],
    ['a milter with both port and path', { name: 'x', kind: 'milter', port: 8891, path: '/tmp/m.sock' }, 'listeners[3].port'],
    ['a milter on_error that is no answer', { name: 'x', kind: 'milter', port: 8891, on_error: 'discard' }, 'listeners[3].on_error'],
    ['a spamd key on a milter', { name: 'x', kind: 'milter', port: 8891, allow_tell: true }, 'allow_tell'],
    ['a network in a policy listener\'s allow that is none', { name: 'x', kind: 'policy', port: 10040, allow: ['10.0.0.300/8'] }, 'listeners[3].allow[0]'],
  ] as const) {
    it(`refuses ${name}, naming ${key}`, async () => {
      const { r, shown } = await check(name.replace(/\W/g, '_'), withListeners(listener as unknown as ConfigObject));
      assert.notEqual(r.code, 0, shown);
      assert.ok(`${r.stdout}${r.stderr}`.includes(key), `the message should name ${key}\n${shown}`);
    });
  }

  it('refuses two milters on one unix socket, naming the second', async () => {
    const { r, shown } = await check('same_socket', withListeners(
      { name: 'm1', kind: 'milter', path: '/tmp/portcullis-same.sock' },
      { name: 'm2', kind: 'milter', path: '/tmp/portcullis-same.sock' },
    ));
    assert.notEqual(r.code, 0, shown);
    assert.match(`${r.stdout}${r.stderr}`, /listeners\[4\]: \/tmp\/portcullis-same\.sock is used by another listener/, shown);
  });
});
