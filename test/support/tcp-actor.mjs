// The applications of the end-to-end tests, in plain JavaScript so that each starts fast.
//   node tcp-actor.mjs server NAME PORT...        listen on every port (dual stack); for each
//        connection read one line (a token) and answer with where it landed, as one JSON line.
//   node tcp-actor.mjs client HOST PORT TOKEN [BIND]   connect (from BIND when given), send the
//        token, print {local, reply} (or {error}) as one JSON line.
import net from 'node:net';

const strip = (a) => (a ?? '').replace(/^::ffff:/, '');
const ep = (a, p) => (strip(a).includes(':') ? `[${strip(a)}]:${p}` : `${strip(a)}:${p}`);
const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  const [name, ...ports] = args;
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
      if (++ready === ports.length) process.stdout.write(JSON.stringify({ ready: name, uid: process.getuid() }) + '\n');
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
  process.stderr.write('usage: tcp-actor.mjs server NAME PORT... | client HOST PORT TOKEN [BIND]\n');
  process.exit(2);
}
