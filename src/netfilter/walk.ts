/**
 * One table at one hook, as the kernel's ipt_do_table walks it: rules in order, an explicit jump
 * stack, goto (no return address), RETURN, the implicit return at the end of a user chain, and
 * the policy when a built-in chain runs out or RETURNs. Non-terminal targets continue.
 */
import { getMatch, getTarget } from '../extensions/index';
import type { EvalContext, MatchResult, RuleResult } from '../extensions/types';
import type { Packet } from '../model/packet';
import type { Hook, Rule, TableName } from '../model/ruleset';
import { saveRuleSpec } from '../syntax/save';
import { candidates, type CompiledChain, type CompiledTable } from './compile';
import { compiledHeaderMatches } from './header';
import { viewPacket, type Step, type Verdict } from './trace';

/** What the walk needs from the trace it belongs to. */
export interface Walker {
  steps: Step[];
  assume: 'match' | 'nomatch';
  assumptions: string[];
  /** The evaluation context for matches and targets of this table at this hook. */
  context(table: TableName, hook: Hook, p: Packet, notes: string[]): EvalContext;
  /** Called once per table walk, after its first step, with the packet's mark then (Trace.entries). */
  firstStep?(mark: number): void;
  /** Apply what the target asked of the flow (NAT); returns a verdict that overrides the target's (REDIRECT without an address drops). */
  afterTarget(table: TableName, hook: Hook, p: Packet, notes: string[]): RuleResult | undefined;
}

/** How a table let the packet go. */
export interface TableOutcome {
  verdict: 'accept' | 'drop' | 'reject' | 'queue';
  rejectWith?: string;
  chain: string;
  /** 1-based rule that decided; null for a policy. */
  rule: number | null;
}

/** Targets the kernel treats as pure side effects: they always continue. */
const SIDE_EFFECT_TARGETS = new Set(['TRACE', 'LOG', 'NFLOG', 'ULOG', 'AUDIT']);

const specText = new WeakMap<Rule, string>();
const lineText = new WeakMap<Rule, string>();
/** A rule's spec as `iptables -S` prints it after `-A CHAIN` (cached per rule). */
function ruleSpec(r: Rule, family: Packet['family']): string {
  let s = specText.get(r);
  if (s === undefined) specText.set(r, (s = saveRuleSpec(r, { family, numeric: true })));
  return s;
}

/** The rule as `iptables -S` prints it (cached per rule: a rule lives in one chain). */
export function ruleLine(chain: string, r: Rule, family: Packet['family']): string {
  let s = lineText.get(r);
  if (s === undefined) lineText.set(r, (s = `-A ${chain}${ruleSpec(r, family)}`));
  return s;
}

function commentOf(r: Rule): string | undefined {
  for (const m of r.matches) if (m.kind === 'match' && m.name === 'comment') return (m.info as { comment: string }).comment;
  return undefined;
}

function evalMatches(w: Walker, r: Rule, p: Packet, ctx: EvalContext, notes: string[]): boolean {
  let undecided: string[] | undefined;
  for (const m of r.matches) {
    let res: MatchResult;
    if (m.kind === 'unknown') res = { undecided: `match "${m.name}" is not modelled` };
    else {
      const ext = getMatch(m.name);
      res = ext?.match ? ext.match(m.info, p, ctx) : { undecided: `match "${m.name}" has no evaluation yet` };
    }
    if (res === false) return false;
    if (res !== true) (undecided ??= []).push(res.undecided);
  }
  if (!undecided) return true;
  const text = `${undecided.join('; ')}: assumed ${w.assume === 'match' ? 'to match' : 'not to match'} (--assume)`;
  notes.push(text);
  w.assumptions.push(`${ctx.table}:${ruleSpec(r, p.family).trimStart()}: ${text}`);
  return w.assume === 'match';
}

function evalTarget(w: Walker, r: Rule, p: Packet, ctx: EvalContext, notes: string[]): RuleResult {
  const t = r.target;
  if (!t) return { verdict: 'continue' };
  switch (t.kind) {
    case 'standard':
      return t.verdict === 'QUEUE' ? { verdict: 'queue', queue: 0 } : { verdict: t.verdict.toLowerCase() as 'accept' | 'drop' | 'return' };
    case 'jump':
      return { verdict: 'jump', chain: t.chain };
    case 'goto':
      return { verdict: 'goto', chain: t.chain };
    default: {
      const ext = t.kind === 'extension' ? getTarget(t.name) : undefined;
      if (ext?.target && t.kind === 'extension') return ext.target(t.info, p, ctx);
      if (!SIDE_EFFECT_TARGETS.has(t.name)) {
        const text = `target ${t.name} is not modelled: assumed to continue`;
        notes.push(text);
        w.assumptions.push(`${ctx.table}:${ruleSpec(r, p.family).trimStart()}: ${text}`);
      }
      return { verdict: 'continue' };
    }
  }
}

const VERDICT: Record<RuleResult['verdict'], Verdict> = {
  continue: 'CONTINUE', accept: 'ACCEPT', drop: 'DROP', return: 'RETURN', jump: 'JUMP', goto: 'GOTO', reject: 'REJECT', queue: 'QUEUE',
};

interface Frame {
  cc: CompiledChain;
  list: number[] | null;
  i: number;
}

const frame = (cc: CompiledChain, p: Packet): Frame => ({ cc, list: candidates(cc.index, p), i: 0 });

/** The policy of the hook's built-in chain, as its own step. */
function policy(w: Walker, base: CompiledChain, table: TableName, hook: Hook): TableOutcome {
  const v = base.chain.policy ?? 'ACCEPT';
  w.steps.push({ hook, table, chain: hook, kind: 'policy', rule: null, verdict: v, target: undefined, text: undefined, comment: undefined, packet: undefined, notes: undefined });
  return { verdict: v === 'ACCEPT' ? 'accept' : 'drop', chain: hook, rule: null };
}

/** Run the packet through one table's chain for `hook`; steps go to the walker. */
export function walkTable(w: Walker, ct: CompiledTable, hook: Hook, p: Packet): TableOutcome {
  const table = ct.table.name;
  const base = ct.chains.get(hook)!;
  const stack: Frame[] = [];
  let cur = frame(base, p);
  let ctx: EvalContext | undefined;
  let first = true;
  for (;;) {
    const rules = cur.cc.chain.rules;
    const n = cur.list ? cur.list.length : rules.length;
    if (cur.i >= n) {
      if (first) w.firstStep?.(p.mark);
      first = false;
      if (cur.cc.builtin) return policy(w, base, table, hook);
      w.steps.push({ hook, table, chain: cur.cc.chain.name, kind: 'return', rule: null, verdict: 'RETURN', target: undefined, text: undefined, comment: undefined, packet: undefined, notes: undefined });
      const up = stack.pop();
      if (!up) return policy(w, base, table, hook);
      cur = up;
      continue;
    }
    const idx = cur.list ? cur.list[cur.i] : cur.i;
    cur.i++;
    if (!compiledHeaderMatches(cur.cc.headers[idx], p)) continue;
    const r = rules[idx];
    const notes: string[] = [];
    ctx = w.context(table, hook, p, notes);
    if (r.matches.length && !evalMatches(w, r, p, ctx, notes)) continue;
    const src = p.src, dst = p.dst, sport = p.sport, dport = p.dport, mark = p.mark;
    let res = evalTarget(w, r, p, ctx, notes);
    res = w.afterTarget(table, hook, p, notes) ?? res;
    const name = cur.cc.chain.name;
    // every step is built in one shape (absent fields undefined), which keeps the walk monomorphic
    const step: Step = {
      hook, table, chain: name, kind: 'rule', rule: idx + 1, verdict: VERDICT[res.verdict],
      target: res.verdict === 'jump' || res.verdict === 'goto' ? res.chain : r.target?.kind === 'extension' || r.target?.kind === 'unknown' ? r.target.name : undefined,
      text: ruleLine(name, r, p.family),
      comment: commentOf(r),
      packet: p.src !== src || p.dst !== dst || p.sport !== sport || p.dport !== dport || p.mark !== mark ? viewPacket(p) : undefined,
      notes: notes.length ? notes : undefined,
    };
    w.steps.push(step);
    if (first) {
      first = false;
      w.firstStep?.(p.mark);
    }
    switch (res.verdict) {
      case 'continue':
        continue;
      case 'accept':
      case 'drop':
      case 'queue':
        return { verdict: res.verdict, chain: name, rule: idx + 1 };
      case 'reject':
        return { verdict: 'reject', rejectWith: res.with, chain: name, rule: idx + 1 };
      case 'jump':
      case 'goto': {
        const next = ct.chains.get(res.chain);
        if (!next) throw new Error(`jump to missing chain ${res.chain}: the ruleset was not checked`);
        if (res.verdict === 'jump') stack.push(cur);
        cur = frame(next, p);
        continue;
      }
      case 'return': {
        const up = stack.pop();
        if (!up) return policy(w, base, table, hook);
        cur = up;
        continue;
      }
    }
  }
}
