// `store.*` in the one schema: what a site may write, and the clear answer to what it may not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../config/load.js';

const refused = (store: unknown, text: RegExp) => assert.throws(() => buildConfig({ store }), (err: Error) => {
  assert.match(err.message, text);
  return true;
});

test('store: sentinel and cluster are accepted with their defaults (sentinel port 26379, cluster node port 6379)', () => {
  const s = buildConfig({ store: { backend: 'redis', sentinel: { name: 'mymaster', sentinels: [{ host: '10.0.0.1' }] } } }).store;
  assert.deepEqual(s.sentinel, { name: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }] });
  const c = buildConfig({ store: { backend: 'redis', cluster: { nodes: [{ host: '10.0.0.2' }, { host: '10.0.0.3', port: 7001 }] } } }).store;
  assert.deepEqual(c.cluster, { nodes: [{ host: '10.0.0.2', port: 6379 }, { host: '10.0.0.3', port: 7001 }] });
});

test('store: bad Redis settings name the key and the fault', () => {
  refused({ backend: 'redis', sentinel: { name: 'm', sentinels: [{ host: 'a' }] }, cluster: { nodes: [{ host: 'b' }] } }, /store\.cluster: store\.sentinel and store\.cluster exclude each other/);
  refused({ backend: 'redis', prefix: 'site{a}:' }, /store\.prefix: must not contain \{ or \} \(Redis Cluster reads them as a hash tag\)/);
  refused({ backend: 'redis', cluster: { nodes: [] } }, /store\.cluster\.nodes/);
  refused({ backend: 'redis', url: 'redis://:pw@x/3', cluster: { nodes: [{ host: 'b' }] } }, /store\.url: with store\.cluster the database must be 0/);
  assert.equal(buildConfig({ store: { backend: 'redis', url: 'redis://:pw@x/0', cluster: { nodes: [{ host: 'b' }] } } }).store.url, 'redis://:pw@x/0');
  refused({ backend: 'redis', sentinel: { name: '', sentinels: [{ host: 'a' }] } }, /store\.sentinel\.name/);
});
