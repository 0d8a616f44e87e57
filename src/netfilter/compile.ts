/**
 * A ruleset prepared for tracing: each rule compiled once, when a packet first reaches it, into one
 * fixed-shape record (header tests, the extensions of its matches and target resolved from the
 * registry, the chain a jump goes to), and an index for long chains whose rules differ only by
 * destination, protocol and destination port (kube-proxy's KUBE-SERVICES): such a chain is a hash
 * lookup, not a walk. Skipped rules are exactly those whose header or port cannot match.
 */
import { getMatch, getTarget } from '../extensions/index';
import type { MatchResult, RuleResult } from '../extensions/types';
import type { Family } from '../model/addr';
import type { Packet } from '../model/packet';
import type { Chain, Rule, Ruleset, Table, TableName } from '../model/ruleset';
import { isBuiltin } from '../model/ruleset';
import { compileHeader, ruleProtocol, type CompiledHeader } from './header';
import { VERDICT, type Verdict } from './trace';

/** A match's evaluation, as the extension exports it. */
export type MatchFn = (info: any, p: Packet, ctx: any) => MatchResult;

/** One match of a compiled rule: the extension's evaluation and its parsed data. */
export interface CompiledMatch {
  fn: MatchFn;
  info: unknown;
}

/** How a compiled rule's target is evaluated. */
export const TargetKind = {
  /** The verdict does not depend on the packet (no target, ACCEPT, DROP, RETURN, QUEUE, jump, goto). */
  Static: 0,
  /** A target extension with an evaluation. */
  Extension: 1,
  /** A target podtables does not evaluate: continue, with a note unless it is a pure side effect. */
  NotModelled: 2,
} as const;
export type TargetKind = (typeof TargetKind)[keyof typeof TargetKind];

/** A rule ready for the walk, in one shape for every rule (absent fields undefined). */
export interface CompiledRule extends CompiledHeader {
  rule: Rule;
  /** 1-based position, as `iptables -L --line-numbers` shows it. */
  num: number;
  /** The first match that can decide anything (comment never does); most rules have at most one. */
  fn0: MatchFn | undefined;
  info0: unknown;
  /** The matches after the first, in order. */
  more: CompiledMatch[];
  targetKind: TargetKind;
  /** The verdict of a Static target (one shared object: the walk never changes it). */
  result: RuleResult;
  /** That verdict as a step prints it. */
  verdict: Verdict;
  /** The chain a jump or goto enters, looked up the first time the rule fires. */
  next: CompiledChain | undefined;
  targetFn: ((info: any, p: Packet, ctx: any) => RuleResult) | undefined;
  targetInfo: unknown;
  /** What a step names as the target: the extension's name for extension and unknown targets. */
  targetName: string | undefined;
  comment: string | undefined;
  /** The rule as `iptables -S` prints it (`-A CHAIN …`), built the first time a step shows it. */
  text: string | undefined;
  /** The same after `-A CHAIN`, as assumptions quote it. */
  spec: string | undefined;
}

/**
 * A chain ready for the walk, made the first time a packet enters it: a trace through kube-proxy's
 * rules of 10,000 Services touches a handful of its 40,000 chains, and what it touches is then
 * allocated together, in the order packets reach it, rather than spread over the whole ruleset.
 */
export interface CompiledChain {
  chain: Chain;
  builtin: boolean;
  family: Family;
  /** Each rule, compiled (same order as chain.rules); for an indexed chain, made only if a packet needs them all. */
  rules: CompiledRule[] | undefined;
  /** Present for long chains of mostly indexable rules. */
  index: ChainIndex | undefined;
  /** An indexed chain's rules compiled so far, by position (each rule is compiled once). */
  slots: (CompiledRule | undefined)[];
}

/**
 * Rule positions by destination, protocol and port, plus the rules that must always be tried; each
 * key's rules are compiled, merged in chain order with `always`, the first time a packet asks.
 */
export interface ChainIndex {
  /** IPv4: by destination as int32 (small integers hash fastest), then along the entries of its ports. */
  byDst: Map<number, IndexEntry>;
  /** IPv6: by `proto/dst/dport`. */
  byKey: Map<string, IndexEntry>;
  /** The rules without a key (compiled), and their positions. */
  always: CompiledRule[];
  alwaysAt: number[];
}

/** The rules of one key: for IPv4 one port of a destination (`(udp ? 2^16 : 0) + dport`; a Service has a few). */
export interface IndexEntry {
  port: number;
  /** 0-based positions of the rules with this key. */
  at: number[];
  /** Those rules and `always`, compiled, in chain order; made on first use. */
  rules: CompiledRule[] | undefined;
  next: IndexEntry | undefined;
}

/** A table's chains by name. */
export interface CompiledTable {
  table: Table;
  family: Family;
  /** Whether long chains may be indexed (EngineOptions.index). */
  indexed: boolean;
  byName: Map<string, Chain>;
  /** The chains packets have entered, prepared. */
  chains: Map<string, CompiledChain>;
}

/** A ruleset's tables by name. */
export type CompiledRuleset = Map<TableName, CompiledTable>;

/** Chains shorter than this are walked rule by rule; the index would not pay for itself. */
const INDEX_MIN_RULES = 16;

const STANDARD: Record<string, RuleResult> = {
  ACCEPT: { verdict: 'accept' }, DROP: { verdict: 'drop' }, RETURN: { verdict: 'return' }, QUEUE: { verdict: 'queue', queue: 0 },
};
const CONTINUE: RuleResult = { verdict: 'continue' };
const NO_MATCHES: CompiledMatch[] = [];

/** Targets the kernel treats as pure side effects: they always continue. */
const SIDE_EFFECT_TARGETS = new Set(['TRACE', 'LOG', 'NFLOG', 'ULOG', 'AUDIT']);

/** Prepare a ruleset for tracing (traces reuse it). `index: false` walks every chain rule by rule, as the kernel does. */
export function compileRuleset(rs: Ruleset, opts: { index?: boolean } = {}): CompiledRuleset {
  const out: CompiledRuleset = new Map();
  for (const t of rs.tables) out.set(t.name, { table: t, family: rs.family, indexed: opts.index !== false, byName: new Map(t.chains.map((c) => [c.name, c])), chains: new Map() });
  return out;
}

/** The chain called `name`, prepared on first use; undefined when the table has none. */
export function chainOf(ct: CompiledTable, name: string): CompiledChain | undefined {
  let cc = ct.chains.get(name);
  if (cc === undefined) {
    const c = ct.byName.get(name);
    if (!c) return undefined;
    cc = { chain: c, builtin: isBuiltin(ct.table.name, name), family: ct.family, rules: undefined, index: undefined, slots: [] };
    cc.index = ct.indexed ? buildIndex(cc) : undefined;
    if (!cc.index) cc.rules = c.rules.map((r, i) => compileRule(r, i, ct.family));
    ct.chains.set(name, cc);
  }
  return cc;
}

/** The rule at position `i` of an indexed chain, compiled once. */
const slot = (cc: CompiledChain, i: number): CompiledRule => (cc.slots[i] ??= compileRule(cc.chain.rules[i], i, cc.family));

/**
 * A copy of an extension's parsed data, made when its rule is compiled, so that it sits in memory
 * beside the compiled rule: the parsed original lies among the whole ruleset's objects, and at
 * 10,000 Services reading it costs a cache miss per rule. Plain objects and arrays are copied;
 * anything else (sets, class instances, primitives) is shared as it is.
 */
function near<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(near) as T;
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = near((v as Record<string, unknown>)[k]);
  return out as T;
}

const notModelled = (text: string): CompiledMatch => {
  const res: MatchResult = { undecided: text };
  return { fn: () => res, info: undefined };
};

function compileRule(r: Rule, i: number, family: Family): CompiledRule {
  const matches: CompiledMatch[] = [];
  let comment: string | undefined;
  for (const m of r.matches) {
    if (m.kind === 'unknown') {
      matches.push(notModelled(`match "${m.name}" is not modelled`));
      continue;
    }
    // comment_mt always matches: it only carries the text a step shows
    if (m.name === 'comment') {
      comment ??= (m.info as { comment: string }).comment;
      continue;
    }
    const ext = getMatch(m.name);
    matches.push(ext?.match ? { fn: ext.match, info: near(m.info) } : notModelled(`match "${m.name}" has no evaluation yet`));
  }
  const t = r.target;
  let targetKind: TargetKind = TargetKind.Static, result = CONTINUE, targetFn: CompiledRule['targetFn'], targetInfo: unknown, targetName: string | undefined;
  if (t?.kind === 'standard') result = STANDARD[t.verdict];
  else if (t?.kind === 'jump' || t?.kind === 'goto') result = { verdict: t.kind, chain: t.chain };
  else if (t) {
    targetName = t.name;
    const ext = t.kind === 'extension' ? getTarget(t.name) : undefined;
    if (ext?.target && t.kind === 'extension') [targetKind, targetFn, targetInfo] = [TargetKind.Extension, ext.target, near(t.info)];
    else if (!SIDE_EFFECT_TARGETS.has(t.name)) targetKind = TargetKind.NotModelled;
  }
  const h = compileHeader(r, family);
  // one literal with every field, so that all compiled rules share one hidden class with in-object fields
  return {
    tests: h.tests, src4: h.src4, srcMask4: h.srcMask4, dst4: h.dst4, dstMask4: h.dstMask4, v6: h.v6, inIf: h.inIf, outIf: h.outIf, proto: h.proto,
    rule: r, num: i + 1, fn0: matches[0]?.fn, info0: matches[0]?.info, more: matches.length > 1 ? matches.slice(1) : NO_MATCHES,
    targetKind, result, verdict: VERDICT[result.verdict], next: undefined, targetFn, targetInfo, targetName, comment, text: undefined, spec: undefined,
  };
}

const V4_HOST = 0xffffffffn;
const V6_HOST = (1n << 128n) - 1n;

/** The port key of an IPv4 index entry (proto is 6 or 17, so one bit tells them apart). */
const portKey = (proto: number, dport: number): number => (proto === 17 ? 65536 : 0) + dport;
const strKey = (proto: number, dst: bigint, dport: number): string => `${proto}/${dst}/${dport}`;

/** The rule's proto/dst/dport when it tests exactly those and nothing else, or undefined. */
function ruleKey(r: Rule): { proto: number; dst: bigint; dport: number } | undefined {
  if (r.source || r.inInterface || r.outInterface || r.fragment) return undefined;
  if (!r.destination || r.destination.invert || !r.protocol || r.protocol.invert) return undefined;
  const d = r.destination.value;
  if (d.mask !== (d.family === 'ipv4' ? V4_HOST : V6_HOST)) return undefined;
  const proto = ruleProtocol(r.protocol.value);
  if (proto !== 6 && proto !== 17) return undefined;
  let dport: number | undefined;
  for (const m of r.matches) {
    if (m.kind !== 'match') return undefined;
    if (m.name === 'comment') continue;
    if (m.name !== (proto === 6 ? 'tcp' : 'udp')) return undefined;
    const i = m.info as { sport?: unknown; dport?: { min: number; max: number; invert: boolean }; flags?: unknown; option?: unknown };
    if (i.sport || i.flags || i.option || !i.dport || i.dport.invert || i.dport.min !== i.dport.max) return undefined;
    if (Object.keys(i).some((k) => !['sport', 'dport', 'flags', 'option'].includes(k) && (i as Record<string, unknown>)[k] !== undefined)) return undefined;
    dport = i.dport.min;
  }
  return dport === undefined ? undefined : { proto, dst: d.addr, dport };
}

/** Two ascending position lists merged into one. */
function merge(a: number[], b: number[]): number[] {
  if (b.length === 0) return a;
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i] < b[j])) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

function buildIndex(cc: CompiledChain): ChainIndex | undefined {
  const c = cc.chain;
  if (c.rules.length < INDEX_MIN_RULES) return undefined;
  const byDst = new Map<number, IndexEntry>();
  const byKey = new Map<string, IndexEntry>();
  const alwaysAt: number[] = [];
  c.rules.forEach((r, i) => {
    const k = ruleKey(r);
    if (k === undefined) return alwaysAt.push(i);
    if (cc.family === 'ipv6') {
      const key = strKey(k.proto, k.dst, k.dport);
      const e = byKey.get(key);
      if (e) e.at.push(i);
      else byKey.set(key, { port: 0, at: [i], rules: undefined, next: undefined });
      return;
    }
    const dst = Number(k.dst) | 0, port = portKey(k.proto, k.dport);
    let e = byDst.get(dst);
    while (e && e.port !== port) e = e.next;
    if (e) e.at.push(i);
    else byDst.set(dst, { port, at: [i], rules: undefined, next: byDst.get(dst) });
  });
  if (alwaysAt.length * 4 > c.rules.length) return undefined;
  return { byDst, byKey, always: alwaysAt.map((i) => slot(cc, i)), alwaysAt };
}

/** An index entry's rules, compiled and merged with `always` the first time a packet needs them. */
const entryRules = (cc: CompiledChain, ix: ChainIndex, e: IndexEntry): CompiledRule[] => (e.rules ??= merge(e.at, ix.alwaysAt).map((i) => slot(cc, i)));

/** The rules of a chain this packet could match, in order: all of them unless the chain is indexed. */
export function candidates(cc: CompiledChain, p: Packet): CompiledRule[] {
  const ix = cc.index;
  if (ix === undefined) return cc.rules!;
  // a fragment has no ports to look up: every rule, as the kernel walks them
  if (p.fragment) return (cc.rules ??= cc.chain.rules.map((_, i) => slot(cc, i)));
  if (p.protocol !== 6 && p.protocol !== 17) return ix.always;
  if (p.family === 'ipv6') {
    const e = ix.byKey.get(strKey(p.protocol, p.dst, p.dport));
    return e ? entryRules(cc, ix, e) : ix.always;
  }
  const port = portKey(p.protocol, p.dport);
  for (let e = ix.byDst.get(Number(p.dst) | 0); e !== undefined; e = e.next) if (e.port === port) return entryRules(cc, ix, e);
  return ix.always;
}
