/**
 * What matches and targets see while a trace runs (EvalContext), the seeded random source of
 * statistic branches, and which rules make the kernel run conntrack at all.
 */
import type { Family } from '../model/addr';
import type { EvalContext, NatRequest } from '../extensions/types';
import type { Packet } from '../model/packet';
import type { Hook, Ruleset, TableName } from '../model/ruleset';
import type { Fib } from './fib';

/** The trace a context belongs to. */
export interface CtxOwner {
  e: { fib: Fib; state<T>(key: object, init: () => T): T };
  pendingNat?: NatRequest;
  choose(p: number, label: string, ctx: Ctx): boolean;
  tproxyTo(p: Packet, addr: bigint | undefined, port: number, mark?: { value: number; mask: number }): boolean;
}

/** A seeded generator (mulberry32): the same seed takes the same branches. */
export class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/**
 * What matches and targets see of the trace (kept as one object per trace: no closures per rule).
 * A rule's notes array is made by its first note: most rules write none.
 */
export class Ctx implements EvalContext {
  family: Family = 'ipv4';
  table: TableName = 'filter';
  hook: Hook = 'INPUT';
  p!: Packet;
  notes: string[] | undefined = undefined;
  constructor(private run: CtxOwner) {}
  /** The types of an address: a set shared between calls, which extensions only read. */
  addrType(addr: bigint, iface?: string): Set<string> {
    return this.run.e.fib.addrType(this.family, addr, iface);
  }
  chance(p: number, label: string): boolean {
    return this.run.choose(p, label, this);
  }
  state<T>(key: object, init: () => T): T {
    return this.run.e.state(key, init);
  }
  nat(req: NatRequest): void {
    this.run.pendingNat = req;
  }
  tproxy(addr: bigint | undefined, port: number, mark?: { value: number; mask: number }): boolean {
    return this.run.tproxyTo(this.p, addr, port, mark);
  }
  note(text: string): void {
    (this.notes ??= []).push(text);
  }
}

/**
 * Extensions whose kernel checkentry calls nf_ct_netns_get. Conntrack runs in a namespace only once
 * one of them is loaded: with none, even a nat table's chains are never traversed (a kernel trace of
 * `-t nat -A PREROUTING -j ACCEPT` alone shows no nat step, and nf_conntrack_count stays 0).
 */
const CONNTRACK_USERS = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP', 'CT', 'NOTRACK', 'CONNMARK', 'CONNSECMARK', 'conntrack', 'state', 'connmark', 'connlimit', 'connbytes', 'connlabel', 'helper', 'cluster']);

/** Whether a ruleset makes the kernel turn conntrack on for its family. */
export function conntrackNeeded(rs: Ruleset): boolean {
  return rs.tables.some((t) => t.chains.some((c) => c.rules.some((r) =>
    r.matches.some((m) => CONNTRACK_USERS.has(m.name)) || ((r.target?.kind === 'extension' || r.target?.kind === 'unknown') && CONNTRACK_USERS.has(r.target.name)))));
}
