/**
 * Preload (`node -r bench/peers/listen-local.cjs ...`) that forces every TCP server the
 * process opens onto 127.0.0.1: the Portkey gateway listens on all interfaces and has no
 * option to change it. Unix sockets and pipes are left alone.
 */
'use strict';
const net = require('node:net');

const HOST = '127.0.0.1';
const original = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    if (first.path === undefined && first.fd === undefined && !first._handle) {
      args[0] = { ...first, host: HOST };
    }
    return original.apply(this, args);
  }
  const isPort = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first));
  if (isPort || first === undefined || typeof first === 'function') {
    const port = isPort ? Number(first) : 0;
    const callback = args.find((a) => typeof a === 'function');
    const backlog = isPort && typeof args[2] === 'number' ? args[2] : undefined;
    return original.call(this, { port, host: HOST, backlog }, callback);
  }
  return original.apply(this, args);
};
