/**
 * One trace in progress (the walker of every table it passes): routing, conntrack and NAT between
 * the tables, in the order engine.ts describes, and where the packet ends.
 */
import { parseIP, type Family, type IP } from '../model/addr';
import { formatAddr } from '../model/fast-addr';
import type { NatRequest, RuleResult } from '../extensions/types';
import { findSocket, primaryAddress, type ListenSocket, type RouteResult } from '../model/host';
import type { Packet } from '../model/packet';
import type { Hook, TableName } from '../model/ruleset';
import { applyBinding, Binding, type Flow } from './conntrack';
import { Ctx, type Rng } from './context';
import type { Engine } from './engine';
import { NAT_DST_HOOKS } from './hooks';
import type { PacketSpec } from './spec';
import { endpoint, viewPacket, type Branch, type PacketView, type Step, type Trace, type TraceResult } from './trace';
import { walkTable, type TableOutcome, type Walker } from './walk';

/** 127/8 and ::1 (a v4 address fits a number: no BigInt shift per packet). */
const isLoopback = (f: Family, a: bigint): boolean => (f === 'ipv4' ? Number(a) >>> 24 === 127 : a === 1n);

const LOOPBACK: Record<Family, IP> = { ipv4: parseIP('127.0.0.1')!, ipv6: parseIP('::1')! };

const branchNotes = [new Map<number, string>(), new Map<number, string>()];
/** A random branch's note, made once per probability (printing it is most of its cost). */
function branchNote(taken: boolean, pr: number): string {
  const m = branchNotes[taken ? 1 : 0];
  let s = m.get(pr);
  if (s === undefined) {
    s = `random branch ${taken ? 'taken' : 'not taken'} (probability ${+pr.toFixed(6)})`;
    // one entry per probability the rules name (p and 1 - p), capped all the same
    if (m.size < 4096) m.set(pr, s);
  }
  return s;
}

/** One trace in progress: the walker of every table it passes. */
export class Run implements Walker {
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
  /** The route of a local packet and what it was chosen for (reroute). */
  private routed?: RouteResult;
  private routedDst = 0n;
  private routedMark = 0;

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

  context(table: TableName, hook: Hook, p: Packet): Ctx {
    // one context per trace, re-aimed at each table walk: extensions use it only during their call
    const c = (this.ctx ??= new Ctx(this));
    c.family = p.family;
    c.table = table;
    c.hook = hook;
    c.p = p;
    c.notes = undefined;
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

  choose(prob: number, label: string, ctx: Ctx): boolean {
    const i = this.branches.length;
    const taken = i < this.script.length ? this.script[i] : this.random ? this.random.next() < prob : prob > 0;
    const pr = taken ? prob : 1 - prob;
    this.branches.push({ label, probability: prob, taken });
    this.probability *= pr;
    ctx.note(branchNote(taken, pr));
    return taken;
  }

  afterTarget(table: TableName, hook: Hook, p: Packet, ctx: Ctx): RuleResult | undefined {
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
          ctx.note(`REDIRECT: ${p.inInterface} has no ${p.family} address, so the kernel drops the packet`);
          return { verdict: 'drop' };
        }
        addr = a.value;
      }
      this.origDst ??= { addr: p.dst, port: p.dport };
      this.flow.dnat = new Binding(addr ?? p.dst, req.portMin ?? p.dport);
      [p.dst, p.dport] = [this.flow.dnat.addr, this.flow.dnat.port];
    } else {
      let addr = req.addrMin;
      if (req.pick === 'masquerade') {
        const rt = this.e.fib.route(p.family, p.dst);
        const a = this.e.fib.masquerade(p.outInterface ?? '', rt?.via ?? { family: p.family, value: p.dst });
        if (!a) {
          ctx.note(`MASQUERADE: ${p.outInterface} has no ${p.family} address, so the kernel drops the packet`);
          return { verdict: 'drop' };
        }
        addr = a.value;
      }
      this.flow.snat = new Binding(addr ?? p.src, req.portMin ?? p.sport);
      [p.src, p.sport] = [this.flow.snat.addr, this.flow.snat.port];
    }
    return undefined;
  }

  /** Run every table of a hook; the first verdict that is not ACCEPT ends the packet, and with `reroute` a failed re-route after a table. */
  private hook(hook: Hook, p: Packet, reroute = false): TableOutcome & { hook: Hook; table: TableName } | undefined {
    for (const [t, ct] of this.e.hookTables(p.family, hook)) {
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
      if (reroute && !this.reroute(t, p)) return { verdict: 'drop', chain: hook, rule: null, hook, table: t };
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
        const [was, now] = manip === 'dst' ? [endpoint(formatAddr(dst, p.family), dport), endpoint(formatAddr(p.dst, p.family), p.dport)] : [endpoint(formatAddr(src, p.family), sport), endpoint(formatAddr(p.src, p.family), p.sport)];
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
    // spelled out rather than spread: the result is made once per trace, and a spread copies slowly
    return {
      disposition,
      packet: { src: formatAddr(p.src, p.family), sport: p.sport, dst: formatAddr(p.dst, p.family), dport: p.dport },
      origDst: extra.origDst ?? null, iface: extra.iface ?? null, nextHop: extra.nextHop ?? null, socket: extra.socket ?? null, at: extra.at ?? null, reason,
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
      // ip_route_input still runs after TPROXY: a destination that is not local reaches the socket
      // only through a policy route for the mark (Istio's `ip rule fwmark 0x539 lookup 133` with
      // `local default dev lo`); without it the kernel drops or forwards it (experiment: a pod's
      // 15006 listener took 10.90.0.5:8080 with the rule, the client timed out without). A host
      // has no policy routes, so say that one is assumed.
      if (this.e.fib.route(p.family, p.dst)?.type !== 'local')
        this.assumptions.push(`TPROXY: ${formatAddr(p.dst, p.family)} is not a local address: delivered on the assumption that a policy route sends mark 0x${p.mark.toString(16)} to a table with a local default route (ip rule add fwmark ... lookup ...; ip route add local default dev lo table ...)`);
      return this.input(p, this.tproxied);
    }
    // ip_route_input: loopback addresses are martians on any other interface (route_localnet is off)
    if (p.inInterface !== 'lo' && (isLoopback(p.family, p.dst) || isLoopback(p.family, p.src))) {
      const which = isLoopback(p.family, p.dst) ? 'destination' : 'source';
      this.event(`routing: loopback ${which} arriving on ${p.inInterface} is a martian`);
      return this.result(p, 'drop', `a loopback ${which} arriving on ${p.inInterface}: the kernel drops it as a martian`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    }
    const rt = this.e.fib.route(p.family, p.dst);
    if (rt?.type === 'local') {
      this.event(`routing: ${formatAddr(p.dst, p.family)} is local → INPUT`);
      return this.input(p);
    }
    if (!rt) return this.result(p, 'drop', `no route to ${formatAddr(p.dst, p.family)}`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    if (!h.forwarding[p.family]) {
      this.event(`routing: ${formatAddr(p.dst, p.family)} is not local and ${p.family} forwarding is off`);
      return this.result(p, 'drop', `not for this host and forwarding is off: the kernel drops it after PREROUTING`, { at: { hook: 'PREROUTING', table: null, chain: null, rule: null } });
    }
    p.outInterface = rt.dev;
    this.event(`routing: forward out ${rt.dev}${rt.via ? ` via ${formatAddr(rt.via.value, rt.via.family)}` : ''}`);
    const fwd = this.hook('FORWARD', p) ?? this.hook('POSTROUTING', p);
    if (fwd) return this.stopped(p, fwd);
    return this.result(p, 'forward', `forwarded out ${rt.dev}`, { iface: rt.dev, nextHop: rt.via ? formatAddr(rt.via.value, rt.via.family) : null });
  }

  private input(p: Packet, tproxied?: ListenSocket): TraceResult {
    const o = this.hook('INPUT', p);
    if (o) return this.stopped(p, o);
    const h = this.e.host;
    const origDst = this.origDst ?? (this.flow && !this.reply ? { addr: this.flow.orig.dst, port: this.flow.orig.dport } : undefined);
    const od = origDst ? { addr: formatAddr(origDst.addr, p.family), port: origDst.port } : null;
    const iface = p.inInterface ?? null;
    if (p.protocol === 6 || p.protocol === 17) {
      const proto: 'tcp' | 'udp' = p.protocol === 6 ? 'tcp' : 'udp';
      const s = tproxied ?? findSocket(h, proto, { family: p.family, value: p.dst }, p.dport);
      if (!s) {
        const why = proto === 'tcp' ? 'the kernel answers with a TCP reset' : 'the kernel answers with ICMP port unreachable';
        return this.result(p, 'no-listener', `nothing listens on ${proto} ${endpoint(formatAddr(p.dst, p.family), p.dport)}: ${why}`, { iface, origDst: od });
      }
      const socket = { proto, addr: formatAddr(s.addr.value, s.family), port: s.port, uid: s.uid, gid: s.gid, process: s.process ?? null };
      const who = `${s.process ?? 'a process'} (uid ${s.uid})`;
      const redirected = od && (od.addr !== formatAddr(p.dst, p.family) || od.port !== p.dport) ? `; it reads the original destination ${endpoint(od.addr, od.port)} with SO_ORIGINAL_DST` : '';
      return this.result(p, 'local', `delivered to ${who} listening on ${proto} ${endpoint(socket.addr, s.port)}${redirected}`, { iface, origDst: od, socket });
    }
    const echo = (p.protocol === 1 && p.icmpType === 8) || (p.protocol === 58 && p.icmpType === 128);
    return this.result(p, 'local', echo ? 'delivered locally: the kernel answers the echo request' : 'delivered to this host', { iface, origDst: od });
  }

  /**
   * ip_route_me_harder after a table of OUTPUT: mangle re-routes when the destination or mark
   * changed, nat when the destination did. False when the new route fails and the hook drops.
   */
  private reroute(t: TableName, p: Packet): boolean {
    if ((t !== 'mangle' && t !== 'nat') || (p.dst === this.routedDst && (t !== 'mangle' || p.mark === this.routedMark))) return true;
    this.routedDst = p.dst;
    this.routedMark = p.mark;
    const r = this.e.fib.route(p.family, p.dst);
    // ip_route_me_harder fails and the hook drops the packet (kernel trace: nothing after nat OUTPUT
    // when DNAT pointed nowhere, or away from the host for a packet from 127.0.0.1: a loopback
    // source may only leave by lo, __ip_route_output_key returns EINVAL otherwise)
    if (!r || (r.type !== 'local' && isLoopback(p.family, p.src))) {
      this.event(`re-route after ${t} OUTPUT: no route to ${formatAddr(p.dst, p.family)}${r ? ` from ${formatAddr(p.src, p.family)}` : ''}, so the kernel drops the packet`);
      return false;
    }
    // the new route takes effect from POSTROUTING on: the rest of OUTPUT still sees the old out
    // device, since nf_hook_state.out is fixed when the hook starts (kernel trace: -o veth0 still
    // matches in filter OUTPUT after nat OUTPUT DNATed to a local address)
    this.routed = r;
    this.event(`re-route after ${t} OUTPUT: ${r.type === 'local' ? `${formatAddr(p.dst, p.family)} is local → out lo` : `out ${r.dev}`}`);
    return true;
  }

  private local(p: Packet): TraceResult {
    let rt = this.e.fib.route(p.family, p.dst);
    if (!rt) return this.result(p, 'drop', `no route to ${formatAddr(p.dst, p.family)}: the sender gets "network unreachable"`, { at: { hook: 'OUTPUT', table: null, chain: null, rule: null } });
    if (rt.type !== 'local' && isLoopback(p.family, p.src)) return this.result(p, 'drop', `a loopback source cannot leave the host: the sender gets "invalid argument" and nothing is sent`, { at: { hook: 'OUTPUT', table: null, chain: null, rule: null } });
    p.outInterface = rt.dev;
    this.event(`routing: ${rt.type === 'local' ? `${formatAddr(p.dst, p.family)} is local → out lo` : `out ${rt.dev}${rt.via ? ` via ${formatAddr(rt.via.value, rt.via.family)}` : ''}`}, source ${formatAddr(p.src, p.family)}`);
    this.routed = rt;
    this.routedDst = p.dst;
    this.routedMark = p.mark;
    const out = this.hook('OUTPUT', p, true);
    if (out) return this.stopped(p, out);
    rt = this.routed!;
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
    const hop = rt.via ? formatAddr(rt.via.value, rt.via.family) : null;
    return this.result(p, 'out', `sent out ${rt.dev}${hop ? ` to ${hop}` : ''}`, { iface: rt.dev, nextHop: hop, origDst: this.origDst ? { addr: formatAddr(this.origDst.addr, p.family), port: this.origDst.port } : null });
  }
}
