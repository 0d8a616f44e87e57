/**
 * The trace of one packet: steps in the kernel's TRACE vocabulary (what `xtables-monitor --trace`
 * prints: table:chain:rule|policy|return:VERDICT), the packet after each rewrite, and where the
 * packet ended. The JSON form is documented in docs/trace-json.md and kept stable.
 */
import type { Family } from '../model/addr';
import { formatAddr } from '../model/fast-addr';
import type { Packet } from '../model/packet';
import { protocolName } from '../model/protocols';
import type { Hook, TableName } from '../model/ruleset';
import type { RuleResult } from '../extensions/types';

/** Verdicts as the kernel's trace prints them. */
export type Verdict = 'CONTINUE' | 'JUMP' | 'GOTO' | 'RETURN' | 'ACCEPT' | 'DROP' | 'REJECT' | 'QUEUE';

/** A rule result's verdict as the kernel's trace prints it. */
export const VERDICT: Record<RuleResult['verdict'], Verdict> = {
  continue: 'CONTINUE', accept: 'ACCEPT', drop: 'DROP', return: 'RETURN', jump: 'JUMP', goto: 'GOTO', reject: 'REJECT', queue: 'QUEUE',
};

/** The packet's fields as a step or result shows them. */
export interface PacketView {
  family: Family;
  proto: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** `0x..` as iptables prints marks. */
  mark: string;
  in: string | null;
  out: string | null;
  ctstate: string;
}

/** One step: a rule that matched, a policy applied, or an implicit return from a user chain. */
export interface Step {
  hook: Hook;
  table: TableName;
  chain: string;
  /** rule: a rule matched; policy: a built-in chain ran out (or RETURNed); return: a user chain ran out. */
  kind: 'rule' | 'policy' | 'return';
  /** 1-based position as `iptables -L --line-numbers` shows it; null for policy and return. */
  rule: number | null;
  verdict: Verdict;
  /** The chain of JUMP/GOTO, or the target's name for extension targets. */
  target?: string;
  /** The rule as `iptables -S` prints it. */
  text?: string;
  comment?: string;
  /** The packet after this step, present when the step rewrote it (NAT, MARK, …). */
  packet?: PacketView;
  /** Assumptions made and remarks (an undecided match, LOG text, a random branch taken). */
  notes?: string[];
}

/** Where the packet ended. */
export type Disposition = 'local' | 'forward' | 'out' | 'drop' | 'reject' | 'no-listener';

/** A listening socket as a result names it. */
export interface SocketView {
  proto: 'tcp' | 'udp';
  addr: string;
  port: number;
  uid: number;
  gid: number;
  process: string | null;
}

/** The end of a trace. */
export interface TraceResult {
  disposition: Disposition;
  packet: { src: string; sport: number; dst: string; dport: number };
  /** What SO_ORIGINAL_DST returns on the accepting socket: the destination before DNAT/REDIRECT. */
  origDst: { addr: string; port: number } | null;
  /** Interface the packet left by (out, forward) or arrived on last (local). */
  iface: string | null;
  nextHop: string | null;
  socket: SocketView | null;
  /** Where a drop or reject happened. */
  at: { hook: Hook; table: TableName | null; chain: string | null; rule: number | null } | null;
  /** Plain words: why it ended there. */
  reason: string;
}

/** A random branch taken while tracing (statistic --mode random). */
export interface Branch {
  label: string;
  /** Probability of the branch that was taken. */
  probability: number;
  taken: boolean;
}

/** One complete trace. */
export interface Trace {
  steps: Step[];
  /** Routing and conntrack events between the tables, in order (e.g. `route: local`, `re-route: out lo`). */
  path: string[];
  /** For each path event, how many steps came before it (where the human text places it). */
  pathIndex: number[];
  /** With EngineOptions.record: the packet as each table saw it on entry (what the kernel's trace prints as PACKET lines). */
  entries?: { hook: Hook; table: TableName; packet: PacketView }[];
  result: TraceResult;
  /** Probability of this outcome: the product of the random branches taken (1 without any). */
  probability: number;
  branches: Branch[];
  /** Matches the engine could not decide and what it assumed. */
  assumptions: string[];
}

/** The packet's fields for a step or result. */
export function viewPacket(p: Packet): PacketView {
  return {
    family: p.family,
    proto: protocolName(p.protocol),
    src: formatAddr(p.src, p.family),
    sport: p.sport,
    dst: formatAddr(p.dst, p.family),
    dport: p.dport,
    mark: '0x' + (p.mark >>> 0).toString(16),
    in: p.inInterface ?? null,
    out: p.outInterface ?? null,
    ctstate: p.ct.state,
  };
}

/** `addr:port` (`[v6]:port`), as the human trace prints endpoints. */
export function endpoint(addr: string, port: number, proto?: string): string {
  const a = addr.includes(':') ? `[${addr}]` : addr;
  return proto === 'icmp' || proto === 'ipv6-icmp' ? addr : `${a}:${port}`;
}

/** The trace as the stable JSON of docs/trace-json.md. */
export function traceJson(t: Trace): object {
  return {
    steps: t.steps.map((s) => ({
      hook: s.hook, table: s.table, chain: s.chain, kind: s.kind, rule: s.rule, verdict: s.verdict,
      ...(s.target !== undefined ? { target: s.target } : {}),
      ...(s.text !== undefined ? { text: s.text } : {}),
      ...(s.comment !== undefined ? { comment: s.comment } : {}),
      ...(s.packet ? { packet: s.packet } : {}),
      ...(s.notes?.length ? { notes: s.notes } : {}),
    })),
    path: t.path,
    result: t.result,
    probability: t.probability,
    branches: t.branches,
    assumptions: t.assumptions,
  };
}
