/**
 * The path of a packet through a host, hook by hook, in the kernel's order:
 *   arriving:  PREROUTING → routing → INPUT → socket, or FORWARD → POSTROUTING → out
 *   local:     routing → OUTPUT (re-route after mangle/nat) → POSTROUTING → out, or via lo back in
 * Each hook runs its tables by priority (hooks.ts); nat runs only while the flow's binding of that
 * manip type is unset (conntrack.ts), which is why a looped-back packet skips nat.
 */
import type { Family } from '../model/addr';
import { formatAddr } from '../model/fast-addr';
import { HostError, type Host } from '../model/host';
import type { Packet } from '../model/packet';
import type { Hook, Ruleset, TableName } from '../model/ruleset';
import { compileRuleset, type CompiledRuleset, type CompiledTable } from './compile';
import { FlowTable } from './conntrack';
import { conntrackNeeded, Rng } from './context';
import { Fib } from './fib';
import { tablesAt } from './hooks';
import { Run } from './run';
import type { PacketSpec } from './spec';
import type { Trace } from './trace';

export { conntrackNeeded } from './context';

/** How undecided matches and random branches are settled. */
export interface EngineOptions {
  /** What an undecided match (unknown extension, missing data) is assumed to do; default match. */
  assume?: 'match' | 'nomatch';
  /** Seed of the random branches (statistic --mode random); default 0. */
  seed?: number;
  /** Whether conntrack runs in this namespace; default: when a rule needs it (see conntrackNeeded). */
  conntrack?: boolean;
  /** Index long proto/dst/dport chains (default true); false walks them rule by rule, as the kernel does. */
  index?: boolean;
  /** Record the packet as each table sees it on entry (Trace.entries), for comparison with kernel traces. */
  record?: boolean;
}

const HOOKS: readonly Hook[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];

/** The traversal engine of one host and its rulesets; it keeps a flow table across traces. */
export class Engine {
  readonly flows = new FlowTable();
  /** The host's routing answers, prepared once. */
  readonly fib: Fib;
  private rulesets = new Map<Family, CompiledRuleset>();
  /** Families whose conntrack runs. */
  readonly tracking = new Set<Family>();
  private ruleState = new WeakMap<object, unknown>();
  private byHook: (Map<Hook, (readonly [TableName, CompiledTable | undefined])[]> | undefined)[] = [undefined, undefined];

  constructor(readonly host: Host, rulesets: Ruleset[], readonly opts: EngineOptions = {}) {
    this.fib = new Fib(host);
    for (const rs of rulesets) {
      this.rulesets.set(rs.family, compileRuleset(rs, { index: opts.index }));
      if (opts.conntrack ?? conntrackNeeded(rs)) this.tracking.add(rs.family);
    }
    if (opts.conntrack) for (const f of ['ipv4', 'ipv6'] as const) this.tracking.add(f);
  }

  /** Trace one packet: random branches follow the seed, or `script` (then untaken beyond it: p > 0). */
  trace(spec: PacketSpec, script?: boolean[]): Trace {
    const p = this.packetOf(spec);
    if (spec.state === 'established' && !this.flows.lookup(p)) this.prime(spec);
    const run = new Run(this, script ?? [], script ? undefined : new Rng(this.opts.seed ?? 0));
    return run.go(p, spec);
  }

  /** Every outcome of the random branches with its probability (at most `limit`); each starts from an empty flow table. */
  traceAll(spec: PacketSpec, limit = 256): Trace[] {
    const out: Trace[] = [];
    const explore = (prefix: boolean[]) => {
      if (out.length >= limit) return;
      this.flows.clear();
      const t = this.trace(spec, prefix);
      if (t.probability > 0) out.push(t);
      for (let k = prefix.length; k < t.branches.length; k++) {
        const b = t.branches[k];
        const altP = b.taken ? 1 - b.probability : b.probability;
        if (altP > 0) explore([...t.branches.slice(0, k).map((x) => x.taken), !b.taken]);
      }
    };
    explore([]);
    return out;
  }

  /** Trace the flow's first packet silently, so that an established packet reuses its NAT binding. */
  private prime(spec: PacketSpec): void {
    const first: PacketSpec = { ...spec, state: 'new', tcpFlags: spec.protocol === 6 ? 0x02 : spec.tcpFlags };
    new Run(this, [], new Rng(this.opts.seed ?? 0)).go(this.packetOf(first), first);
    const f = this.flows.lookup(this.packetOf(first));
    if (f) f.flow.seenReply = true;
  }

  /** The tables a hook runs for a family, in priority order, each with its compiled form if the ruleset has it. */
  hookTables(f: Family, hook: Hook): readonly (readonly [TableName, CompiledTable | undefined])[] {
    const key = f === 'ipv4' ? 0 : 1;
    let byHook = this.byHook[key];
    if (!byHook) {
      const rs = this.rulesets.get(f);
      byHook = this.byHook[key] = new Map(HOOKS.map((h) => [h, tablesAt(h).map((t) => [t, rs?.get(t)] as const)]));
    }
    return byHook.get(hook)!;
  }

  /** The compiled ruleset of a family, if one was given. */
  tables(f: Family): CompiledRuleset | undefined {
    return this.rulesets.get(f);
  }

  /** Per-rule state shared by every trace of this engine. */
  state<T>(key: object, init: () => T): T {
    if (!this.ruleState.has(key)) this.ruleState.set(key, init());
    return this.ruleState.get(key) as T;
  }

  /** Build the packet a spec describes; throws HostError for a packet this host cannot have. */
  packetOf(s: PacketSpec): Packet {
    const h = this.host;
    if (s.inIface) {
      const i = h.interfaces.find((x) => x.name === s.inIface);
      if (!i) throw new HostError(`unknown interface "${s.inIface}" (this host has ${h.interfaces.map((x) => x.name).join(', ')})`);
      if (!i.up) throw new HostError(`interface "${s.inIface}" is down`);
    } else if (s.src && !this.fib.isLocal(s.src.family, s.src.value)) {
      throw new HostError(`source ${formatAddr(s.src.value, s.family)} is not an address of this host: a local packet must come from one (or describe an arriving packet with "in IFACE")`);
    }
    let src = s.src?.value;
    if (src === undefined) {
      const rt = this.fib.route(s.dst.family, s.dst.value);
      if (!rt?.src) throw new HostError(`no route to ${formatAddr(s.dst.value, s.family)}: the host has no source address for it`);
      src = rt.src.value;
    }
    const tcp = s.protocol === 6;
    const icmp = s.protocol === 1 || s.protocol === 58;
    return {
      family: s.family, protocol: s.protocol, src, dst: s.dst.value,
      sport: s.sport ?? (tcp || s.protocol === 17 ? 40000 : 0), dport: s.dport ?? 0,
      tcpFlags: s.tcpFlags ?? (tcp ? (s.state === 'new' ? 0x02 : 0x10) : 0),
      icmpType: s.icmpType ?? (icmp ? (s.protocol === 1 ? 8 : 128) : 0), icmpCode: s.icmpCode ?? 0,
      inInterface: s.inIface, mark: s.mark, length: s.length ?? 60, ttl: s.ttl ?? 64, tos: s.tos ?? 0, fragment: false,
      socket: s.inIface ? undefined : { uid: s.uid ?? 0, gid: s.gid ?? s.uid ?? 0, supplGroups: [] },
      ct: { state: s.state === 'new' ? 'NEW' : (s.state.toUpperCase() as 'ESTABLISHED'), reply: false, mark: 0, status: new Set(), natted: { src: false, dst: false }, zone: 0 },
    };
  }
}
