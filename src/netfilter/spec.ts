/**
 * The packet grammar of `podtables trace`:
 *   tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0        (arriving on eth0)
 *   tcp -> 10.96.0.10:80 uid 1000                          (local origin; source chosen by routing)
 *   icmp 10.0.0.5 -> 10.244.0.13 in eth0 [type N]          (an echo request unless `type N`)
 *   udp [fd00::5]:5353 -> [fd00::13]:53 in eth0 mark 0x10 state established flags SYN,ACK
 */
import { parseIP, type Family, type IP } from '../model/addr';
import { TCP_FLAGS } from '../model/packet';
import { protocolNumber } from '../model/protocols';

/** A packet as the user described it. */
export interface PacketSpec {
  family: Family;
  protocol: number;
  src?: IP;
  sport?: number;
  dst: IP;
  dport?: number;
  /** Arriving on this interface; absent for local origin. */
  inIface?: string;
  uid?: number;
  gid?: number;
  mark: number;
  state: 'new' | 'established' | 'related' | 'invalid';
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  length?: number;
  ttl?: number;
  tos?: number;
}

/** A packet description that cannot be read; the message names the offending word. */
export class SpecError extends Error {}

/** Split `addr[:port]` or `[v6]:port`. */
function endpoint(text: string, what: string): { ip: IP; port?: number } {
  let addr = text, port: string | undefined;
  const b = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (b) [addr, port] = [b[1], b[2]];
  else if ((text.match(/:/g) ?? []).length === 1) [addr, port] = text.split(':');
  const ip = parseIP(addr);
  if (!ip) throw new SpecError(`${what} "${text}": not an address (write ADDR, ADDR:PORT or [V6ADDR]:PORT)`);
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) > 65535)) throw new SpecError(`${what} "${text}": bad port`);
  return { ip, port: port === undefined ? undefined : Number(port) };
}

const num = (word: string, v: string | undefined, max: number): number => {
  if (v === undefined) throw new SpecError(`"${word}" needs a value`);
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n > max) throw new SpecError(`${word} "${v}": expected a number up to ${max}`);
  return n;
};

/** Parse a packet description (the words may come as one string or as argv words). */
export function parsePacketSpec(input: string | string[]): PacketSpec {
  const w = (Array.isArray(input) ? input.join(' ') : input).trim().split(/\s+/).filter(Boolean);
  if (w.length === 0) throw new SpecError('no packet given: e.g. "tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0" or "tcp -> 10.96.0.10:80 uid 1000"');
  const protoWord = w[0].toLowerCase();
  const protocol = protoWord === 'icmpv6' || protoWord === 'icmp6' ? 58 : protocolNumber(protoWord);
  if (protocol === undefined || protocol === 0) throw new SpecError(`unknown protocol "${w[0]}" (tcp, udp, icmp, icmpv6, sctp or a number)`);
  const arrow = w.indexOf('->');
  if (arrow < 0 || arrow > 2) throw new SpecError('expected "PROTO [SRC] -> DST …"');
  const src = arrow === 2 ? endpoint(w[1], 'source') : undefined;
  if (w[arrow + 1] === undefined) throw new SpecError('no destination after "->"');
  const dst = endpoint(w[arrow + 1], 'destination');
  if (src && src.ip.family !== dst.ip.family) throw new SpecError('source and destination are of different families');
  const spec: PacketSpec = { family: dst.ip.family, protocol, src: src?.ip, sport: src?.port, dst: dst.ip, dport: dst.port, mark: 0, state: 'new' };
  const hasPorts = [6, 17, 132, 136, 33].includes(protocol);
  if (!hasPorts && (src?.port !== undefined || dst.port !== undefined)) throw new SpecError(`${w[0]} has no ports`);
  if (hasPorts && dst.port === undefined) throw new SpecError(`destination "${w[arrow + 1]}" needs a port for ${w[0]}`);
  for (let i = arrow + 2; i < w.length; i += 2) {
    const k = w[i].toLowerCase(), v = w[i + 1];
    switch (k) {
      case 'in':
        if (!v) throw new SpecError('"in" needs an interface name');
        spec.inIface = v;
        break;
      case 'uid': spec.uid = num(k, v, 0xfffffffe); break;
      case 'gid': spec.gid = num(k, v, 0xfffffffe); break;
      case 'mark': spec.mark = num(k, v, 0xffffffff); break;
      case 'len': case 'length': spec.length = num(k, v, 65535); break;
      case 'ttl': spec.ttl = num(k, v, 255); break;
      case 'tos': spec.tos = num(k, v, 255); break;
      case 'type': spec.icmpType = num(k, v, 255); break;
      case 'code': spec.icmpCode = num(k, v, 255); break;
      case 'state': {
        const s = v?.toLowerCase();
        if (s !== 'new' && s !== 'established' && s !== 'related' && s !== 'invalid') throw new SpecError(`state "${v}": expected new, established, related or invalid`);
        spec.state = s;
        break;
      }
      case 'flags': {
        if (protocol !== 6) throw new SpecError('"flags" is for tcp packets');
        let f = 0;
        for (const n of (v ?? '').split(',')) {
          const b = TCP_FLAGS[n.toUpperCase()];
          if (b === undefined) throw new SpecError(`flags "${v}": unknown TCP flag "${n}"`);
          f |= b;
        }
        spec.tcpFlags = f;
        break;
      }
      default:
        throw new SpecError(`unknown word "${w[i]}" (in, uid, gid, mark, state, flags, type, code, len, ttl, tos)`);
    }
  }
  if (spec.inIface && (spec.uid !== undefined || spec.gid !== undefined)) throw new SpecError('a packet arriving "in" an interface has no local uid/gid');
  if (spec.inIface && !spec.src) throw new SpecError('an arriving packet needs a source address: "PROTO SRC -> DST in IFACE"');
  return spec;
}
