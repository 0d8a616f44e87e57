/**
 * A transparent TCP proxy for tests and demos: it accepts connections the nat rules redirected,
 * asks the kernel where each was going (SO_ORIGINAL_DST, conntrack's original tuple), logs it and
 * relays the bytes to that destination. Node has no getsockopt, so it is called through koffi.
 */
import net from 'node:net';
import { createRequire } from 'node:module';

/** SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h) are both 80. */
const SO_ORIGINAL_DST = 80;
const SOL_IP = 0;
const SOL_IPV6 = 41;

/** An address and port. */
export interface Endpoint {
  family: 'ipv4' | 'ipv6';
  address: string;
  port: number;
}

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;
let getsockopt: GetSockOpt | undefined;
let errnoOf: (() => number) | undefined;

function libc(): GetSockOpt {
  if (!getsockopt) {
    // loaded on first use: koffi is a native module and only the proxy needs it
    const koffi = createRequire(import.meta.url)('koffi');
    const lib = koffi.load('libc.so.6');
    getsockopt = lib.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *val, _Inout_ uint32_t *len)') as GetSockOpt;
    errnoOf = () => koffi.errno() as number;
  }
  return getsockopt;
}

/** Decode a sockaddr_in or sockaddr_in6 as the kernel fills it. */
export function decodeSockaddr(buf: Buffer): Endpoint | null {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === 2) return { family: 'ipv4', address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port };
  if (family === 10) {
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(8 + i * 2).toString(16));
    // net.isIP-normal form through Node's own parser (compresses zero runs)
    return { family: 'ipv6', address: new net.SocketAddress({ address: words.join(':'), family: 'ipv6' }).address, port };
  }
  return null;
}

/** The destination a redirected connection was going to, or an error text (errno) when there is none. */
export function originalDst(socket: net.Socket): Endpoint | string {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return 'socket has no file descriptor';
  const v6 = socket.localFamily === 'IPv6' && !socket.localAddress?.startsWith('::ffff:');
  const buf = Buffer.alloc(28);
  const len = [v6 ? 28 : 16];
  const rc = libc()(fd, v6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, buf, len);
  // ENOENT: conntrack has no entry for this socket (untracked, or the table was flushed)
  if (rc !== 0) return `getsockopt(SO_ORIGINAL_DST) failed: errno ${errnoOf?.()}`;
  return decodeSockaddr(buf) ?? 'unknown address family';
}

/** One event the proxy reports. */
export type ProxyEvent =
  | { event: 'listening'; listener: string; address: string; port: number; uid: number }
  | { event: 'accept'; listener: string; peer: string; local: string; orig: string }
  | { event: 'connected'; listener: string; peer: string; upstream: string; via: string }
  | { event: 'refused'; listener: string; peer: string; reason: string }
  | { event: 'closed'; listener: string; peer: string; sent: number; received: number };

/** What to listen on and as whom to run. */
export interface ProxyOptions {
  /** Port the inbound redirect targets (Linkerd 4143). */
  inbound?: number;
  /** Port the outbound redirect targets (Linkerd 4140). */
  outbound?: number;
  /** Drop to this uid (and gid) after binding: the uid the nat rules let through. */
  uid?: number;
  gid?: number;
  /**
   * The source address of inbound relays, per family. Istio's envoy relays inbound connections
   * from 127.0.0.6 (and ::6), which its ISTIO_OUTPUT lets through; from the pod IP, a relay by the
   * proxy's uid out `lo` matches the rule that sends the proxy's own calls to the pod back to its
   * inbound port, and loops (measured in a namespace with Istio's REDIRECT rules).
   */
  inboundSource?: Partial<Record<Endpoint['family'], string>>;
  log: (e: ProxyEvent) => void;
}

const text = (a: string | undefined, p: number | undefined) => (a?.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

function handle(listener: string, ownPort: number, client: net.Socket, log: ProxyOptions['log'], source: ProxyOptions['inboundSource']): void {
  const peer = text(client.remoteAddress?.replace(/^::ffff:/, ''), client.remotePort);
  const orig = originalDst(client);
  if (typeof orig === 'string' || orig.port === ownPort) {
    // connected to us directly: the "original" destination is ourselves, and relaying would loop
    log({ event: 'refused', listener, peer, reason: typeof orig === 'string' ? orig : 'not redirected (original destination is the proxy itself)' });
    client.destroy();
    return;
  }
  log({ event: 'accept', listener, peer, local: text(client.localAddress?.replace(/^::ffff:/, ''), client.localPort), orig: text(orig.address, orig.port) });
  client.pause();
  const localAddress = listener === 'inbound' ? source?.[orig.family] : undefined;
  const up = net.connect({ host: orig.address, port: orig.port, family: orig.family === 'ipv6' ? 6 : 4, ...(localAddress ? { localAddress } : {}) });
  let sent = 0, received = 0;
  client.on('data', (d) => (sent += d.length));
  up.on('data', (d) => (received += d.length));
  up.on('connect', () => {
    log({ event: 'connected', listener, peer, upstream: text(orig.address, orig.port), via: text(up.localAddress, up.localPort) });
    client.pipe(up);
    up.pipe(client);
    client.resume();
  });
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    client.destroy();
    up.destroy();
    log({ event: 'closed', listener, peer, sent, received });
  };
  client.on('error', finish).on('close', finish);
  up.on('error', finish).on('close', finish);
}

function listen(server: net.Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    // a kernel without IPv6 refuses the :: socket: serve IPv4 only
    server.once('error', (e: NodeJS.ErrnoException) => (host === '::' && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') ? resolve(false) : reject(e)));
    server.listen({ host, port, ipv6Only: host === '::' }, () => resolve(true));
  });
}

/** Start the listeners, drop privileges, and relay until closed. */
export async function startProxy(o: ProxyOptions): Promise<{ close(): void }> {
  libc();
  const servers: net.Server[] = [];
  const bound: { listener: string; host: string; port: number }[] = [];
  for (const [listener, port] of [['inbound', o.inbound], ['outbound', o.outbound]] as const) {
    if (port === undefined) continue;
    // one socket per family: SO_ORIGINAL_DST is asked with the socket's own level (SOL_IP or SOL_IPV6)
    for (const host of ['0.0.0.0', '::']) {
      const s = net.createServer((c) => handle(listener, port, c, o.log, o.inboundSource));
      if (await listen(s, host, port)) {
        servers.push(s);
        bound.push({ listener, host, port });
      }
    }
  }
  if (o.uid !== undefined) {
    process.setgroups?.([]);
    process.setgid?.(o.gid ?? o.uid);
    process.setuid?.(o.uid);
  }
  for (const b of bound) o.log({ event: 'listening', listener: b.listener, address: b.host, port: b.port, uid: process.getuid?.() ?? -1 });
  return { close: () => servers.forEach((s) => s.close()) };
}
