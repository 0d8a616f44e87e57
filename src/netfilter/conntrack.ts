/**
 * Conntrack-lite: flows by tuple, their NAT bindings, and which NAT manip types are done. The nat
 * table runs only while a flow's binding of that type is not yet set up (nf_nat_inet_fn checks
 * nf_nat_initialized); once set, even a null binding, later packets reuse it and replies undo it.
 */
import type { Packet, Tuple } from '../model/packet';

/** One flow: its original tuple and what NAT did to it. */
export interface Flow {
  proto: number;
  orig: Tuple;
  /** NAT done per manip type; a null binding (no rule matched) counts as done. */
  init: { src: boolean; dst: boolean };
  dnat?: { addr: bigint; port: number };
  snat?: { addr: bigint; port: number };
  seenReply: boolean;
}

// v4 addresses print faster as numbers than as bigints
const n = (v: bigint): number | bigint => (v <= 0xffffffffn ? Number(v) : v);
const tupleKey = (proto: number, t: Tuple) => `${proto}|${n(t.src)}|${t.sport}|${n(t.dst)}|${t.dport}`;

/** The flow table one engine keeps across traces. */
export class FlowTable {
  private byOrig = new Map<string, Flow>();
  private byReply = new Map<string, Flow>();

  /** The flow a packet belongs to and its direction, if the table knows it. */
  lookup(p: Packet): { flow: Flow; reply: boolean } | undefined {
    const t = { src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
    const o = this.byOrig.get(tupleKey(p.protocol, t));
    if (o) return { flow: o, reply: false };
    const r = this.byReply.get(tupleKey(p.protocol, t));
    return r ? { flow: r, reply: true } : undefined;
  }

  /** Start tracking a flow from its first packet. */
  create(p: Packet): Flow {
    const f: Flow = { proto: p.protocol, orig: { src: p.src, dst: p.dst, sport: p.sport, dport: p.dport }, init: { src: false, dst: false }, seenReply: false };
    this.byOrig.set(tupleKey(p.protocol, f.orig), f);
    return f;
  }

  /** Record the flow's reply tuple once its NAT is complete (nf_conntrack_confirm). */
  confirm(f: Flow): void {
    this.byReply.set(tupleKey(f.proto, replyTuple(f)), f);
  }

  /** Forget every flow. */
  clear(): void {
    this.byOrig.clear();
    this.byReply.clear();
  }
}

/** The tuple replies carry: from the (translated) destination back to the (translated) source. */
export function replyTuple(f: Flow): Tuple {
  const dst = f.dnat ?? { addr: f.orig.dst, port: f.orig.dport };
  const src = f.snat ?? { addr: f.orig.src, port: f.orig.sport };
  return { src: dst.addr, sport: dst.port, dst: src.addr, dport: src.port };
}

/**
 * Reuse a flow's binding on a later packet (nf_nat_packet): in the original direction the binding
 * of this manip type is applied; in the reply direction the opposite one is undone.
 */
export function applyBinding(f: Flow, reply: boolean, manip: 'src' | 'dst', p: Packet): boolean {
  if (!reply) {
    const b = manip === 'dst' ? f.dnat : f.snat;
    if (!b) return false;
    if (manip === 'dst') [p.dst, p.dport] = [b.addr, b.port];
    else [p.src, p.sport] = [b.addr, b.port];
    return true;
  }
  // a reply's destination is restored from the original source (undoing SNAT), its source from the original destination (undoing DNAT)
  if (manip === 'dst' && f.snat) {
    [p.dst, p.dport] = [f.orig.src, f.orig.sport];
    return true;
  }
  if (manip === 'src' && f.dnat) {
    [p.src, p.sport] = [f.orig.dst, f.orig.dport];
    return true;
  }
  return false;
}
