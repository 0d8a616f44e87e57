/**
 * The path of a packet through a host, hook by hook, in the kernel's order:
 *   arriving:  PREROUTING → routing → INPUT → socket, or FORWARD → POSTROUTING → out
 *   local:     routing → OUTPUT (re-route after mangle/nat) → POSTROUTING → out, or via lo back in
 * Each hook runs its tables by priority (hooks.ts); nat runs only while the flow's binding of that
 * manip type is unset (conntrack.ts), which is why a looped-back packet skips nat.
 */
import { formatIP, parseIP, type Family, type IP } from '../model/addr';
import type { EvalContext, NatRequest, RuleResult } from '../extensions/types';
import { findSocket, HostError, isLocal, masqueradeAddress, primaryAddress, route, type Host, type ListenSocket } from '../model/host';
import type { Packet } from '../model/packet';
import type { Hook, Ruleset, TableName } from '../model/ruleset';
import { compileRuleset, type CompiledRuleset } from './compile';
import { applyBinding, FlowTable, type Flow } from './conntrack';
import { NAT_DST_HOOKS, tablesAt } from './hooks';
import { conntrackNeeded, Ctx, Rng } from './context';
import type { PacketSpec } from './spec';
import { endpoint, viewPacket, type Branch, type PacketView, type Step, type Trace, type TraceResult } from './trace';
import { walkTable, type TableOutcome, type Walker } from './walk';

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

/** 127/8 and ::1. */
const isLoopback = (f: Family, a: bigint): boolean => (f === 'ipv4' ? a >> 24n === 127n : a === 1n);

const LOOPBACK: Record<Family, IP> = { ipv4: parseIP('127.0.0.1')!, ipv6: parseIP('::1')! };

/** The traversal engine of one host and its rulesets; it keeps a flow table across traces. */
export class Engine {
  readonly flows = new FlowTable();
  private rulesets = new Map<Family, CompiledRuleset>();
  /** Families whose conntrack runs. */
  readonly tracking = new Set<Family>();
  private ruleState = new WeakMap<object, unknown>();

  constructor(readonly host: Host, rulesets: Ruleset[], readonly opts: EngineOptions = {}) {
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
    } else if (s.src && !isLocal(h, s.src)) {
      throw new HostError(`source ${formatIP(s.src.value, s.family)} is not an address of this host: a local packet must come from one (or describe an arriving packet with "in IFACE")`);
    }
    let src = s.src?.value;
    if (src === undefined) {
      const rt = route(h, s.dst);
      if (!rt?.src) throw new HostError(`no route to ${formatIP(s.dst.value, s.family)}: the host has no source address for it`);
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

/** One trace in progress: the walker of every table it passes. */
class Run implements Walker {
  steps: Step[] = [];
  path: string[] = [];
  pathIndex: number[] = [];
  assumptions: string[] = [];
  branches: Branch[] = [];
  probability = 1;
  assume: 'match' | 'nomatch';
  pendingNat?: NatRequest;
  private ctx?: Ctx;
  private tproxied?: ListenSocket;
  private flow?: Flow;
  private reply = false;
  private untracked = false;
  private origDst?: { addr: bigint; port: number };

  constructor(readonly e: Engine, private script: boolean[], private random?: Rng) {
    this.assume = e.opts.assume ?? 'match';
  }

  entries?: { hook: Hook; table: TableName; packet: PacketView }[];

  /**
   * The kernel's trace event carries the packet as it is when the table's first event is emitted:
   * after that rule's own effect on the mark (MARK), before any NAT (applied once the chain returns).
   */
  firstStep(mark: number): void {
    const e = this.entries?.[this.entries.length - 1];
    if (e) e.packet.mark = '0x' + (mark >>> 0).toString(16);
  }

  private enter(hook: Hook, table: TableName, p: Packet): void {
    if (this.e.opts.record) (this.entries ??= []).push({ hook, table, packet: viewPacket(p) });
  }

  private event(text: string): void {
    this.path.push(text);
    this.pathIndex.push(this.steps.length);
  }

  context(table: TableName, hook: Hook, p: Packet, notes: string[]): EvalContext {
    // one context per trace, re-aimed at each rule: extensions use it only during their call
    const c = (this.ctx ??= new Ctx(this));
    c.family = p.family;
    c.table = table;
    c.hook = hook;
    c.p = p;
    c.notes = notes;
    return c;
  }

  /** TPROXY's socket lookup (nf_tproxy_get_sock_v4): a transparent socket on the address and port. */
  tproxyTo(p: Packet, addr: bigint | undefined, port: number, mark?: { value: number; mask: number }): boolean {
    const h = this.e.host;
    const laddr = addr !== undefined ? { family: p.family, value: addr } : primaryAddress(h, p.inInterface ?? 'lo', p.family) ?? { family: p.family, value: p.dst };
    const s = findSocket(h, p.protocol === 6 ? 'tcp' : 'udp', laddr, port || p.dport);
    if (!s?.transparent) return false;
    if (mark) p.mark = ((p.mark & ~mark.mask) ^ mark.value) >>> 0;
    this.tproxied = s;
    return true;
  }

  choose(prob: number, label: string, notes: string[]): boolean {
    const i = this.branches.length;
    const taken = i < this.script.length ? this.script[i] : this.random ? this.random.next() < prob : prob > 0;
    const pr = taken ? prob : 1 - prob;
    this.branches.push({ label, probability: prob, taken });
    this.probability *= pr;
    notes.push(`random branch ${taken ? 'taken' : 'not taken'} (probability ${+pr.toFixed(6)})`);
    return taken;
  }

  afterTarget(table: TableName, hook: Hook, p: Packet, notes: string[]): RuleResult | undefined {
    const req = this.pendingNat;
    if (!req) return undefined;
    this.pendingNat = undefined;
    if (table !== 'nat' || !this.flow) return undefined;
    const h = this.e.host;
    if (req.side === 'dst') {
      let addr = req.addrMin;
      if (req.pick === 'redirect') {
        // nf_nat_redirect: locally made packets go to loopback, arriving ones to the in device's first address
        const a = hook === 'OUTPUT' ? LOOPBACK[p.family] : primaryAddress(h, p.inInterface ?? '', p.family);
        if (!a) {
          notes.push(`REDIRECT: ${p.inInterface} has no ${p.family} address, so the kernel drops the packet`);
          return { verdict: 'drop' };
        }
        addr = a.value;
      }
      this.origDst ??= { addr: p.dst, port: p.dport };
      this.flow.dnat = { addr: addr ?? p.dst, port: req.portMin ?? p.dport };
      [p.dst, p.dport] = [this.flow.dnat.addr, this.flow.dnat.port];
    } else {
      let addr = req.addrMin;
      if (req.pick === 'masquerade') {
        const rt = route(h, { family: p.family, value: p.dst });
        const a = masqueradeAddress(h, p.outInterface ?? '', rt?.via ?? { family: p.family, value: p.dst });
        if (!a) {
          notes.push(`MASQUERADE: ${p.outInterface} has no ${p.family} address, so the kernel drops the packet`);
          return { verdict: 'drop' };
        }
        addr = a.value;
      }
      this.flow.snat = { addr: addr ?? p.src, port: req.portMin ?? p.sport };
      [p.src, p.sport] = [this.flow.snat.addr, this.flow.snat.port];
    }
    return undefined;
  }

  /** Run every table of a hook; the first verdict that is not ACCEPT ends the packet. */
  /** Run every table of a hook; `onTable` may stop the packet after a table (a failed re-route) by returning false. */
  private hook(hook: Hook, p: Packet, onTable?: (t: TableName) => boolean): TableOutcome & { hook: Hook; table: TableName } | undefined {
    const rs = this.e.tables(p.family);
    for (const t of tablesAt(hook)) {
      const ct = rs?.get(t);
      let out: TableOutcome | undefined;
      if (t === 'nat') out = this.nat(hook, p);
      else if (ct) {
        // raw runs before conntrack (priority -300 < -200): a packet without a conntrack entry yet is INVALID to ctstate
        const saved = p.ct.state;
        if (t === 'raw' && !this.flow && !this.untracked) p.ct.state = 'INVALID';
        this.enter(hook, t, p);
        out = walkTable(this, ct, hook, p);
        if (t === 'raw' && !this.flow && p.ct.state === 'INVALID') p.ct.state = saved;
      }
      if (t === 'raw' && !this.flow && !this.untracked) this.track(p);
      if (out && out.verdict !== 'accept') return { ...out, hook, table: t };
      if (onTable && !onTable(t)) return { verdict: 'drop', chain: hook, rule: null, hook, table: t };
    }
    return undefined;
  }

  /** nf_conntrack_in: find or create the flow (a looped-back packet keeps its entry). */
  private track(p: Packet): void {
    if (!this.e.tracking.has(p.family)) {
      if (!this.untracked && this.e.tables(p.family)?.has('nat')) this.event('conntrack is off in this namespace (no rule needs it): the nat table is never consulted');
      this.untracked = true;
      return;
    }
    if (p.ct.state === 'UNTRACKED' || p.ct.state === 'INVALID') return;
    const found = this.e.flows.lookup(p);
    if (found) {
      this.flow = found.flow;
      this.reply = found.reply;
      p.ct.reply = found.reply;
      if (p.ct.state === 'NEW' && (found.reply || found.flow.seenReply)) p.ct.state = 'ESTABLISHED';
    } else if (p.ct.state === 'NEW') {
      this.flow = this.e.flows.create(p);
    }
  }

  /** The nat table at a hook: walked for a flow's first packet, else its binding is reused. */
  private nat(hook: Hook, p: Packet): TableOutcome | undefined {
    const manip = NAT_DST_HOOKS.includes(hook) ? 'dst' : 'src';
    const f = this.flow;
    if (!f) return undefined;
    if (f.init[manip] || this.reply) {
      const src = p.src, dst = p.dst, sport = p.sport, dport = p.dport;
      if (applyBinding(f, this.reply, manip, p) && (p.src !== src || p.dst !== dst || p.sport !== sport || p.dport !== dport)) {
        const [was, now] = manip === 'dst' ? [endpoint(formatIP(dst, p.family), dport), endpoint(formatIP(p.dst, p.family), p.dport)] : [endpoint(formatIP(src, p.family), sport), endpoint(formatIP(p.src, p.family), p.sport)];
        this.event(`${hook}: conntrack reuses the flow's ${manip === 'dst' ? 'destination' : 'source'} NAT: ${was} now ${now}`);
      }
      return undefined;
    }
    f.init[manip] = true;
    const ct = this.e.tables(p.family)?.get('nat');
    if (!ct) return undefined;
    this.enter(hook, 'nat', p);
    return walkTable(this, ct, hook, p);
  }

  /** Trace the packet from where the spec says it starts to where it ends. */
  go(p: Packet, spec: PacketSpec): Trace {
    const result = spec.inIface ? this.arrive(p) : this.local(p);
    if (this.flow && !this.reply) this.e.flows.confirm(this.flow);
    return { steps: this.steps, path: this.path, pathIndex: this.pathIndex, entries: this.entries, result, probability: this.probability, branches: this.branches, assumptions: this.assumptions };
  }

  private result(p: Packet, disposition: TraceResult['disposition'], reason: string, extra: Partial<TraceResult> = {}): TraceResult {
    return {
      disposition,
      packet: { src: formatIP(p.src, p.family), sport: p.sport, dst: formatIP(p.dst, p.family), dport: p.dport },
      origDst: null, iface: null, nextHop: null, socket: null, at: null, reason, ...extra,
    };
  }

  private stopped(p: Packet, o: TableOutcome & { hook: Hook; table: TableName }): TraceResult {
    const at = { hook: o.hook, table: o.table, chain: o.chain, rule: o.rule };
    const where = `${o.table} ${o.chain}${o.rule ? ` rule ${o.rule}` : ' policy'}`;
    if (o.verdict === 'drop' && o.rule === null && this.path[this.path.length - 1]?.includes('no route')) return this.result(p, 'drop', `no route after ${o.table} ${o.hook} changed the destination`, { at: { hook: o.hook, table: o.table, chain: null, rule: null } });
    if (o.verdict === 'reject') return this.result(p, 'reject', `rejected at ${where}${o.rejectWith ? ` (${o.rejectWith})` : ''}`, { at });
    if (o.verdict === 'queue') return this.result(p, 'drop', `queued to userspace at ${where}; podtables does not follow it further`, { at });
    return this.result(p, 'drop', `dropped at ${where}`, { at });
  }

  private arrive(p: Packet): TraceResult {
    const h = this.e.host;
    p.outInterface = undefined;
    const pre = this.hook('PREROUTING', p);
    if (pre) return this.stopped(p, pre);
    if (this.tproxied) {
      this.event(`TPROXY: diverted to the transparent socket on port ${this.tproxied.port}`);
      return this.input(p, this.tproxied);
    }
    const dst = { family: p.family, value: p.dst };
    // ip_route_input: loopback addresses are martians on any other interface (route_localnet is off)
    if (p.inInterface !== 'lo' && (isLoopback(p.family, p.dst) || isLoopback(p.family, p.src))) {
      const which = isLoopback(p.family, p.dst) ? 'destination' : 'source';
      this.event(`routing: loopback ${which} arriving on ${p.inInterface} is a martian`);
      return this.result(p, 'drop', `a loopback ${which} arriving on ${p.inInterface}: the kernel drops it as a martian`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    }
    const rt = route(h, dst);
    if (rt?.type === 'local') {
      this.event(`routing: ${formatIP(p.dst, p.family)} is local → INPUT`);
      return this.input(p);
    }
    if (!rt) return this.result(p, 'drop', `no route to ${formatIP(p.dst, p.family)}`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    if (!h.forwarding[p.family]) {
      this.event(`routing: ${formatIP(p.dst, p.family)} is not local and ${p.family} forwarding is off`);
      return this.result(p, 'drop', `not for this host and forwarding is off: the kernel drops it after PREROUTING`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    }
    p.outInterface = rt.dev;
    this.event(`routing: forward out ${rt.dev}${rt.via ? ` via ${formatIP(rt.via.value, rt.via.family)}` : ''}`);
    const fwd = this.hook('FORWARD', p) ?? this.hook('POSTROUTING', p);
    if (fwd) return this.stopped(p, fwd);
    return this.result(p, 'forward', `forwarded out ${rt.dev}`, { iface: rt.dev, nextHop: rt.via ? formatIP(rt.via.value, rt.via.family) : null });
  }

  private input(p: Packet, tproxied?: ListenSocket): TraceResult {
    const o = this.hook('INPUT', p);
    if (o) return this.stopped(p, o);
    const h = this.e.host;
    const origDst = this.origDst ?? (this.flow && !this.reply ? { addr: this.flow.orig.dst, port: this.flow.orig.dport } : undefined);
    const od = origDst ? { addr: formatIP(origDst.addr, p.family), port: origDst.port } : null;
    const iface = p.inInterface ?? null;
    if (p.protocol === 6 || p.protocol === 17) {
      const proto: 'tcp' | 'udp' = p.protocol === 6 ? 'tcp' : 'udp';
      const s = tproxied ?? findSocket(h, proto, { family: p.family, value: p.dst }, p.dport);
      if (!s) {
        const why = proto === 'tcp' ? 'the kernel answers with a TCP reset' : 'the kernel answers with ICMP port unreachable';
        return this.result(p, 'no-listener', `nothing listens on ${proto} ${endpoint(formatIP(p.dst, p.family), p.dport)}: ${why}`, { iface, origDst: od });
      }
      const socket = { proto, addr: formatIP(s.addr.value, s.family), port: s.port, uid: s.uid, gid: s.gid, process: s.process ?? null };
      const who = `${s.process ?? 'a process'} (uid ${s.uid})`;
      const redirected = od && (od.addr !== formatIP(p.dst, p.family) || od.port !== p.dport) ? `; it reads the original destination ${endpoint(od.addr, od.port)} with SO_ORIGINAL_DST` : '';
      return this.result(p, 'local', `delivered to ${who} listening on ${proto} ${endpoint(socket.addr, s.port)}${redirected}`, { iface, origDst: od, socket });
    }
    const echo = (p.protocol === 1 && p.icmpType === 8) || (p.protocol === 58 && p.icmpType === 128);
    return this.result(p, 'local', echo ? 'delivered locally: the kernel answers the echo request' : 'delivered to this host', { iface, origDst: od });
  }

  private local(p: Packet): TraceResult {
    const h = this.e.host;
    let rt = route(h, { family: p.family, value: p.dst });
    if (!rt) return this.result(p, 'drop', `no route to ${formatIP(p.dst, p.family)}: the sender gets "network unreachable"`, { at: { hook: 'OUTPUT', table: null, chain: null, rule: null } });
    if (rt.type !== 'local' && isLoopback(p.family, p.src)) return this.result(p, 'drop', `a loopback source cannot leave the host: the sender gets "invalid argument" and nothing is sent`, { at: { hook: 'OUTPUT', table: null, chain: null, rule: null } });
    p.outInterface = rt.dev;
    this.event(`routing: ${rt.type === 'local' ? `${formatIP(p.dst, p.family)} is local → out lo` : `out ${rt.dev}${rt.via ? ` via ${formatIP(rt.via.value, rt.via.family)}` : ''}`}, source ${formatIP(p.src, p.family)}`);
    let routed = { dst: p.dst, mark: p.mark };
    // ip_route_me_harder: mangle OUTPUT re-routes when the destination or mark changed, nat OUTPUT when the destination did
    const reroute = (t: TableName): boolean => {
      if ((t !== 'mangle' && t !== 'nat') || (p.dst === routed.dst && (t !== 'mangle' || p.mark === routed.mark))) return true;
      routed = { dst: p.dst, mark: p.mark };
      const r = route(h, { family: p.family, value: p.dst });
      // ip_route_me_harder fails and the hook drops the packet (kernel trace: nothing after nat OUTPUT
      // when DNAT pointed nowhere, or away from the host for a packet from 127.0.0.1: a loopback
      // source may only leave by lo, __ip_route_output_key returns EINVAL otherwise)
      if (!r || (r.type !== 'local' && isLoopback(p.family, p.src))) {
        this.event(`re-route after ${t} OUTPUT: no route to ${formatIP(p.dst, p.family)}${r ? ` from ${formatIP(p.src, p.family)}` : ''}, so the kernel drops the packet`);
        return false;
      }
      // the new route takes effect from POSTROUTING on: the rest of OUTPUT still sees the old out
      // device, since nf_hook_state.out is fixed when the hook starts (kernel trace: -o veth0 still
      // matches in filter OUTPUT after nat OUTPUT DNATed to a local address)
      rt = r;
      this.event(`re-route after ${t} OUTPUT: ${r.type === 'local' ? `${formatIP(p.dst, p.family)} is local → out lo` : `out ${r.dev}`}`);
      return true;
    };
    const out = this.hook('OUTPUT', p, reroute);
    if (out) return this.stopped(p, out);
    p.outInterface = rt.dev;
    const post = this.hook('POSTROUTING', p);
    if (post) return this.stopped(p, post);
    if (rt.type === 'local') {
      // out lo and back in: the conntrack entry stays with the packet, so PREROUTING/INPUT nat is skipped
      this.event('loopback: out lo, back in on lo');
      p.inInterface = 'lo';
      p.socket = undefined;
      return this.arrive(p);
    }
    const hop = rt.via ? formatIP(rt.via.value, rt.via.family) : null;
    return this.result(p, 'out', `sent out ${rt.dev}${hop ? ` to ${hop}` : ''}`, { iface: rt.dev, nextHop: hop, origDst: this.origDst ? { addr: formatIP(this.origDst.addr, p.family), port: this.origDst.port } : null });
  }
}
