/** `-m pkttype`: the link-layer class of a packet (libxt_pkttype + xt_pkttype). */
import type { Packet } from '../model/packet';
import type { EvalContext, MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce } from './util';

/** The kernel's PACKET_* values, in the order libxt_pkttype looks names up (first name is printed). */
const TYPES: [string, number][] = [
  ['unicast', 0], ['broadcast', 1], ['multicast', 2], ['otherhost', 3],
  ['bcast', 1], ['mcast', 2], ['host', 0],
];

export interface PkttypeInfo {
  type: number;
  invert: boolean;
}

const typeName = (t: number): string => TYPES.find(([, v]) => v === t)?.[0] ?? String(t);

/** Whether an address is a multicast group: 224.0.0.0/4 or ff00::/8. */
const isMulticast = (a: bigint, fam: 'ipv4' | 'ipv6'): boolean =>
  fam === 'ipv4' ? a >> 28n === 0xen : a >> 120n === 0xffn;

/** The PACKET_* class of a packet at the hook being evaluated. */
export function packetType(p: Packet, ctx: EvalContext): number {
  if (ctx.hook === 'OUTPUT' || ctx.hook === 'POSTROUTING' || p.inInterface === 'lo') return 0;
  if (isMulticast(p.dst, p.family)) return 2;
  if (p.family === 'ipv4' && (p.dst === 0xffffffffn || ctx.addrType(p.dst, p.inInterface).has('BROADCAST'))) return 1;
  return 0;
}

export const pkttype: MatchExtension<PkttypeInfo> = {
  kind: 'match',
  name: 'pkttype',
  options: [{ name: 'pkt-type', args: 1, invert: true }],
  parse(opts) {
    let info: PkttypeInfo | undefined;
    eachOnce(opts, 'pkttype', (o) => {
      const t = TYPES.find(([n]) => n === o.args[0].toLowerCase());
      if (!t) throw new ExtensionError(`Bad packet type '${o.args[0]}'`);
      info = { type: t[1], invert: o.invert };
    });
    if (!info) throw new ExtensionError('pkttype: option "--pkt-type" must be specified');
    return info;
  },
  save: (i) => `${i.invert ? ' !' : ''} --pkt-type ${typeName(i.type)}`,
  list: (i) => ` PKTTYPE ${i.invert ? '!' : ''}= ${typeName(i.type)}`,
  /**
   * xt_pkttype reads skb->pkt_type, which the model derives the way the kernel sets it (veth and
   * loopback pings in namespaces): locally made packets are PACKET_HOST in OUTPUT and POSTROUTING
   * even when sent to a group or a broadcast address; everything that crosses `lo` is
   * PACKET_HOST too (lo's neighbours carry its all-zero address); elsewhere the link-layer
   * destination follows the IP one.
   */
  match(i, p, ctx: EvalContext) {
    return (packetType(p, ctx) === i.type) !== i.invert;
  },
};
