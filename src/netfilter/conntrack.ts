/**
 * Conntrack-lite: flows by tuple, their NAT bindings, and which NAT manip types are done. The nat
 * table runs only while a flow's binding of that type is not yet set up (nf_nat_inet_fn checks
 * nf_nat_initialized); once set, even a null binding, later packets reuse it and replies undo it.
 */
import type { Family } from '../model/addr';
import type { Packet, Tuple } from '../model/packet';

/** What NAT gives one side of a flow: the address and port its packets get. */
export class Binding {
  constructor(public addr: bigint, public port: number) {}
}

/** The NAT manip types done for a flow; a null binding (no rule matched) counts as done. */
export class NatDone {
  src = false;
  dst = false;
}

/** One direction of a flow's tuple. */
export class FlowTuple implements Tuple {
  constructor(public src: bigint, public dst: bigint, public sport: number, public dport: number) {}
}

/**
 * One flow: its original tuple and what NAT did to it. Flows and their parts are class instances
 * rather than object literals: V8 decides per literal whether to allocate it straight in the old
 * generation (allocation-site pretenuring, from how many of them survived a young collection), and
 * a table holding its flows when such a collection comes would send every later flow there too,
 * where only a full collection frees it (the trace benchmark's memory grew by 200 bytes a trace).
 */
export class Flow {
  init = new NatDone();
  dnat: Binding | undefined = undefined;
  snat: Binding | undefined = undefined;
  seenReply = false;
  orig: FlowTuple;
  constructor(public family: Family, public proto: number, p: Packet) {
    this.orig = new FlowTuple(p.src, p.dst, p.sport, p.dport);
  }
}

/**
 * A tuple's key in the flow table. IPv4 packs protocol, addresses and ports into seven UTF-16 code
 * units (one short string, no number printed); IPv6 spells them out, which is always longer, so
 * the two families never share a key.
 */
function tupleKey(family: Family, proto: number, src: bigint, sport: number, dst: bigint, dport: number): string {
  if (family === 'ipv4') {
    const s = Number(src), d = Number(dst);
    return String.fromCharCode(proto, s >>> 16, s & 0xffff, sport, d >>> 16, d & 0xffff, dport);
  }
  return `${proto}|${src}|${sport}|${dst}|${dport}`;
}

/** The flow table one engine keeps across traces. */
export class FlowTable {
  private byOrig = new Map<string, Flow>();
  private byReply = new Map<string, Flow>();

  /** The flow a packet belongs to and its direction, if the table knows it. */
  lookup(p: Packet): { flow: Flow; reply: boolean } | undefined {
    const k = tupleKey(p.family, p.protocol, p.src, p.sport, p.dst, p.dport);
    const o = this.byOrig.get(k);
    if (o) return { flow: o, reply: false };
    const r = this.byReply.get(k);
    return r ? { flow: r, reply: true } : undefined;
  }

  /** Start tracking a flow from its first packet. */
  create(p: Packet): Flow {
    const f = new Flow(p.family, p.protocol, p);
    this.byOrig.set(tupleKey(p.family, p.protocol, p.src, p.sport, p.dst, p.dport), f);
    return f;
  }

  /** Record the flow's reply tuple once its NAT is complete (nf_conntrack_confirm). */
  confirm(f: Flow): void {
    // replies come from the (translated) destination back to the (translated) source
    const d = f.dnat, s = f.snat;
    const k = tupleKey(f.family, f.proto, d ? d.addr : f.orig.dst, d ? d.port : f.orig.dport, s ? s.addr : f.orig.src, s ? s.port : f.orig.sport);
    this.byReply.set(k, f);
  }

  /**
   * Forget every flow. New maps rather than Map.clear(): a map that has lived long enough to be in
   * the old generation gets its cleared table there too, and the flows that table held stay alive
   * until the next full collection (traceAll and the benchmark clear the table every few traces).
   */
  clear(): void {
    this.byOrig = new Map();
    this.byReply = new Map();
  }
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
