// `kind: milter` in `config check`: a TCP and a unix-socket entry pass; an entry with neither
// port nor path, with both, a bad network in `allow`, an unknown on_error, or a key of the scan
// kinds are refused, each naming the key.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { baseConfig, runCli, showCli, type ConfigObject } from '../helpers/gateway.js';

describe('config check: milter listeners', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-milter-config-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const withListeners = (...extra: ConfigObject[]) => {
    const c = baseConfig({ mx: 2525, submission: 5870, submissions: 4650, pop3: 1100, pop3s: 9950, imap: 1430, imaps: 9930 }, '/tmp/portcullis-milter-config-data');
    return { ...c, listeners: [...(c.listeners as ConfigObject[]), ...extra] };
  };
  const check = async (name: string, doc: unknown) => {
    const file = path.join(dir, `${name}.yaml`);
    await fs.writeFile(file, YAML.stringify(doc));
    const r = await runCli(['config', 'check', file]);
    return { r, shown: showCli(['config', 'check', file], r) };
  };

  it('accepts a TCP and a unix-socket milter listener with their keys', async () => {
    const { r, shown } = await check('good', withListeners(
      { name: 'milter', kind: 'milter', port: 8891, allow: ['127.0.0.1', '10.0.0.0/8'], timeout: '5m', on_error: 'accept', max_connections: 20 },
      { name: 'milter-unix', kind: 'milter', path: '/tmp/portcullis-milter.sock' },
    ));
    assert.equal(r.code, 0, shown);
  });

  for (const [name, listener, key] of [
    ['neither port nor path', { name: 'x', kind: 'milter' }, 'listeners[3].port'],
    ['both port and path', { name: 'x', kind: 'milter', port: 8891, path: '/tmp/m.sock' }, 'listeners[3].port'],
    ['a network in allow that is none', { name: 'x', kind: 'milter', port: 8891, allow: ['10.0.0.300/8'] }, 'listeners[3].allow[0]'],
    ['an on_error that is no answer', { name: 'x', kind: 'milter', port: 8891, on_error: 'discard' }, 'listeners[3].on_error'],
    ['a key of the spamd kind', { name: 'x', kind: 'milter', port: 8891, allow_tell: true }, 'allow_tell'],
  ] as const) {
    it(`refuses ${name}, naming ${key}`, async () => {
      const { r, shown } = await check(name.replace(/\W/g, '_'), withListeners(listener as unknown as ConfigObject));
      assert.notEqual(r.code, 0, shown);
      assert.ok(`${r.stdout}${r.stderr}`.includes(key), `the message should name ${key}\n${shown}`);
    });
  }
});
