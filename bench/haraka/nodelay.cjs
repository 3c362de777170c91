// Preloaded (node -r) into Haraka for the "with TCP_NODELAY" variant only: Haraka does not
// set TCP_NODELAY on its sockets, which makes it latency-bound on loopback (Nagle's algorithm
// delays its small replies). This turns it on for every server and client socket it creates.
'use strict';
const net = require('node:net');
const createServer = net.createServer;
net.createServer = function (options, listener) {
  if (typeof options === 'function' || options === undefined) return createServer.call(this, { noDelay: true }, options);
  return createServer.call(this, { noDelay: true, ...options }, listener);
};
for (const name of ['connect', 'createConnection']) {
  const orig = net[name];
  net[name] = function (...args) {
    const sock = orig.apply(this, args);
    sock.setNoDelay(true);
    return sock;
  };
}
