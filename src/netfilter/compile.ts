/**
 * A ruleset prepared for tracing: chains by name, and an index for long chains whose rules differ
 * only by destination, protocol and destination port (kube-proxy's KUBE-SERVICES): such a chain is
 * a hash lookup, not a walk. Skipped rules are exactly those whose header or port cannot match.
 */
import type { Packet } from '../model/packet';
import type { Chain, Rule, Ruleset, Table, TableName } from '../model/ruleset';
import { isBuiltin } from '../model/ruleset';
import { compileHeader, ruleProtocol, type CompiledHeader } from './header';

/** A chain ready for the walk. */
export interface CompiledChain {
  chain: Chain;
  builtin: boolean;
  /** Each rule's header, compiled (same order as chain.rules). */
  headers: CompiledHeader[];
  /** Present for long chains of mostly indexable rules. */
  index?: ChainIndex;
}

/** Rule positions (0-based) by `proto/dst/dport`, plus the positions that must always be tried. */
export interface ChainIndex {
  byKey: Map<string, number[]>;
  always: number[];
}

/** A table's chains by name. */
export interface CompiledTable {
  table: Table;
  chains: Map<string, CompiledChain>;
}

/** A ruleset's tables by name. */
export type CompiledRuleset = Map<TableName, CompiledTable>;

/** Chains shorter than this are walked rule by rule; the index would not pay for itself. */
const INDEX_MIN_RULES = 16;

/** Prepare a ruleset for tracing (done once; traces reuse it). `index: false` walks every chain rule by rule, as the kernel does. */
export function compileRuleset(rs: Ruleset, opts: { index?: boolean } = {}): CompiledRuleset {
  const out: CompiledRuleset = new Map();
  for (const t of rs.tables) {
    const chains = new Map<string, CompiledChain>();
    for (const c of t.chains) chains.set(c.name, { chain: c, builtin: isBuiltin(t.name, c.name), headers: c.rules.map(compileHeader), index: opts.index === false ? undefined : buildIndex(c) });
    out.set(t.name, { table: t, chains });
  }
  return out;
}

const key = (proto: number, dst: bigint, dport: number) => `${proto}/${dst <= 0xffffffffn ? Number(dst) : dst}/${dport}`;

/** The lookup key of a rule that tests exactly one proto/dst/dport and nothing else, or undefined. */
function ruleKey(r: Rule): string | undefined {
  if (r.source || r.inInterface || r.outInterface || r.fragment) return undefined;
  if (!r.destination || r.destination.invert || !r.protocol || r.protocol.invert) return undefined;
  const d = r.destination.value;
  if (d.mask !== (d.family === 'ipv4' ? 0xffffffffn : (1n << 128n) - 1n)) return undefined;
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
  return dport === undefined ? undefined : key(proto, d.addr, dport);
}

function buildIndex(c: Chain): ChainIndex | undefined {
  if (c.rules.length < INDEX_MIN_RULES) return undefined;
  const byKey = new Map<string, number[]>();
  const always: number[] = [];
  c.rules.forEach((r, i) => {
    const k = ruleKey(r);
    if (k === undefined) always.push(i);
    else {
      const l = byKey.get(k);
      if (l) l.push(i);
      else byKey.set(k, [i]);
    }
  });
  return always.length * 4 <= c.rules.length ? { byKey, always } : undefined;
}

const EMPTY: number[] = [];
/** The rule positions of an indexed chain this packet could match, in order; null: walk them all. */
export function candidates(ix: ChainIndex | undefined, p: Packet): number[] | null {
  if (!ix) return null;
  if (p.fragment) return null;
  const hit = ix.byKey.get(key(p.protocol, p.dst, p.dport)) ?? EMPTY;
  if (hit.length === 0) return ix.always;
  if (ix.always.length === 0) return hit;
  const out: number[] = [];
  let a = 0, b = 0;
  while (a < hit.length || b < ix.always.length) {
    if (b >= ix.always.length || (a < hit.length && hit[a] < ix.always[b])) out.push(hit[a++]);
    else out.push(ix.always[b++]);
  }
  return out;
}
