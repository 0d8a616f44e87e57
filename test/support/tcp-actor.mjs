// The applications of the end-to-end tests, in plain JavaScript so that each starts fast.
//   node tcp-actor.mjs server NAME PORT...        listen on every port (dual stack); for each
//        connection read one line (a token) and answer with where it landed, as one JSON line.
//   node tcp-actor.mjs tserver NAME PORT...       as server, with every listener transparent
//        (IPV6_TRANSPARENT), so that TPROXY may hand it connections for any address; its ready line
//        says `transparent: true`. Needs CAP_NET_ADMIN (or CAP_NET_RAW), as Istio's proxy has.
//   node tcp-actor.mjs client HOST PORT TOKEN [BIND]   connect (from BIND when given), send the
//        token, print {local, reply} (or {error}) as one JSON line.
import net from 'node:net';
import { createRequire } from 'node:module';

const strip = (a) => (a ?? '').replace(/^::ffff:/, '');
const ep = (a, p) => (strip(a).includes(':') ? `[${strip(a)}]:${p}` : `${strip(a)}:${p}`);
const [mode, ...args] = process.argv.slice(2);

/**
 * setsockopt(IPV6_TRANSPARENT) through libc (Node cannot set it). xt_TPROXY checks the flag on the
 * listener when a packet arrives, so setting it after listen() is enough; on a dual-stack :: socket
 * IPV6_TRANSPARENT and IP_TRANSPARENT set the same bit, and either diverts IPv4 and IPv6 alike
 * (experiment: both options, v4 and v6 connections, with a mangle TPROXY rule in a namespace).
 */
function transparency() {
  const koffi = createRequire(import.meta.url)('koffi');
  const setsockopt = koffi.load('libc.so.6').func('int setsockopt(int fd, int level, int name, const uint8_t *val, uint32_t len)');
  const SOL_IPV6 = 41;
  const IPV6_TRANSPARENT = 75;
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  return (server, port) => {
    if (setsockopt(server._handle.fd, SOL_IPV6, IPV6_TRANSPARENT, one, 4) === 0) return;
    // read at once: the first touch of process.stderr probes the tty and leaves ENOTTY in errno
    const errno = koffi.errno();
    // EPERM without CAP_NET_ADMIN/CAP_NET_RAW: the kernel would silently drop every diverted packet
    process.stderr.write(`tserver: setsockopt(IPV6_TRANSPARENT) on port ${port} failed: errno ${errno}\n`);
    process.exit(1);
  };
}

if (mode === 'server' || mode === 'tserver') {
  const [name, ...ports] = args;
  const makeTransparent = mode === 'tserver' ? transparency() : undefined;
  let ready = 0;
  for (const port of ports.map(Number)) {
    const s = net.createServer((c) => {
      let buf = '';
      c.on('data', (d) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const landing = { server: name, port, peer: ep(c.remoteAddress, c.remotePort), local: ep(c.localAddress, c.localPort), token: buf.slice(0, nl), uid: process.getuid() };
        process.stdout.write(JSON.stringify(landing) + '\n');
        c.end(JSON.stringify(landing) + '\n');
      });
      c.on('error', () => {});
    });
    s.listen({ host: '::', port }, () => {
      makeTransparent?.(s, port);
      if (++ready === ports.length) process.stdout.write(JSON.stringify({ ready: name, uid: process.getuid(), ...(makeTransparent ? { transparent: true } : {}) }) + '\n');
    });
  }
} else if (mode === 'client') {
  const [host, port, token, bind] = args;
  const c = net.connect({ host, port: Number(port), localAddress: bind });
  let buf = '';
  let local = '';
  const timer = setTimeout(() => {
    process.stdout.write(JSON.stringify({ error: 'timeout' }) + '\n');
    process.exit(1);
  }, 5000);
  c.on('connect', () => {
    local = ep(c.localAddress, c.localPort);
    c.write(token + '\n');
  });
  c.on('data', (d) => (buf += d));
  c.on('end', () => {
    clearTimeout(timer);
    process.stdout.write(JSON.stringify({ local, reply: JSON.parse(buf) }) + '\n');
  });
  c.on('error', (e) => {
    clearTimeout(timer);
    process.stdout.write(JSON.stringify({ error: e.code ?? e.message }) + '\n');
    process.exitCode = 1;
  });
} else {
  process.stderr.write('usage: tcp-actor.mjs server|tserver NAME PORT... | client HOST PORT TOKEN [BIND]\n');
  process.exit(2);
}
