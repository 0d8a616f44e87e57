/**
 * One table at one hook, as the kernel's ipt_do_table walks it: rules in order, an explicit jump
 * stack, goto (no return address), RETURN, the implicit return at the end of a user chain, and
 * the policy when a built-in chain runs out or RETURNs. Non-terminal targets continue.
 */
import type { EvalContext, NatRequest, RuleResult } from '../extensions/types';
import type { Packet } from '../model/packet';
import type { Hook, TableName } from '../model/ruleset';
import { saveRuleSpec } from '../syntax/save';
import { candidates, chainOf, TargetKind, type CompiledChain, type CompiledRule, type CompiledTable } from './compile';
import { compiledHeaderMatches } from './header';
import { VERDICT, viewPacket, type PacketView, type Step } from './trace';

/** The evaluation context of one table walk: notes of the current rule are made on the first one written. */
export interface RuleContext extends EvalContext {
  notes: string[] | undefined;
}

/** What the walk needs from the trace it belongs to. */
export interface Walker {
  steps: Step[];
  assume: 'match' | 'nomatch';
  assumptions: string[];
  /** Set by a NAT target; the walk then calls afterTarget. */
  pendingNat?: NatRequest;
  /** The evaluation context for matches and targets of this table at this hook. */
  context(table: TableName, hook: Hook, p: Packet): RuleContext;
  /** Called once per table walk, after its first step, with the packet's mark then (Trace.entries). */
  firstStep?(mark: number): void;
  /** Apply what the target asked of the flow (NAT); returns a verdict that overrides the target's (REDIRECT without an address drops). */
  afterTarget(table: TableName, hook: Hook, p: Packet, ctx: RuleContext): RuleResult | undefined;
}

/** How a table let the packet go. */
export interface TableOutcome {
  verdict: 'accept' | 'drop' | 'reject' | 'queue';
  rejectWith?: string;
  chain: string;
  /** 1-based rule that decided; null for a policy. */
  rule: number | null;
}

/** The rule's spec as `iptables -S` prints it after `-A CHAIN` (built once per compiled rule). */
const ruleSpec = (r: CompiledRule, family: Packet['family']): string => (r.spec ??= saveRuleSpec(r.rule, { family, numeric: true }));

/** The rule as `iptables -S` prints it (built once per compiled rule: a rule lives in one chain). */
function ruleLine(chain: string, r: CompiledRule, family: Packet['family']): string {
  return (r.text ??= `-A ${chain}${ruleSpec(r, family)}`);
}

function evalMatches(w: Walker, r: CompiledRule, p: Packet, ctx: RuleContext): boolean {
  let res = r.fn0!(r.info0, p, ctx);
  if (res === false) return false;
  let undecided: string[] | undefined;
  if (res !== true) undecided = [res.undecided];
  for (const m of r.more) {
    res = m.fn(m.info, p, ctx);
    if (res === false) return false;
    if (res !== true) (undecided ??= []).push(res.undecided);
  }
  if (!undecided) return true;
  const text = `${undecided.join('; ')}: assumed ${w.assume === 'match' ? 'to match' : 'not to match'} (--assume)`;
  ctx.note(text);
  w.assumptions.push(`${ctx.table}:${ruleSpec(r, p.family).trimStart()}: ${text}`);
  return w.assume === 'match';
}

const CONTINUE: RuleResult = { verdict: 'continue' };

function evalTarget(w: Walker, r: CompiledRule, p: Packet, ctx: RuleContext): RuleResult {
  if (r.targetKind === TargetKind.Extension) return r.targetFn!(r.targetInfo, p, ctx);
  const text = `target ${r.targetName} is not modelled: assumed to continue`;
  ctx.note(text);
  w.assumptions.push(`${ctx.table}:${ruleSpec(r, p.family).trimStart()}: ${text}`);
  return CONTINUE;
}

/** The policy of the hook's built-in chain, as its own step. */
function policy(w: Walker, base: CompiledChain, table: TableName, hook: Hook): TableOutcome {
  const v = base.chain.policy ?? 'ACCEPT';
  w.steps.push({ hook, table, chain: hook, kind: 'policy', rule: null, verdict: v, target: undefined, text: undefined, comment: undefined, packet: undefined, notes: undefined });
  return { verdict: v === 'ACCEPT' ? 'accept' : 'drop', chain: hook, rule: null };
}

/** Run the packet through one table's chain for `hook`; steps go to the walker. */
export function walkTable(w: Walker, ct: CompiledTable, hook: Hook, p: Packet): TableOutcome {
  const table = ct.table.name;
  const base = chainOf(ct, hook)!;
  // the context stays aimed at this table and hook for the whole walk; only its notes change per rule
  const ctx = w.context(table, hook, p);
  // the jump stack holds (chain, rules, next position) triples; made on the first jump
  let stack: (CompiledChain | CompiledRule[] | number)[] | undefined;
  let cc = base;
  let rules = candidates(base, p);
  let i = 0;
  let first = true;
  // IPv4 addresses as int32 for the header tests, refreshed after any target that may rewrite them
  let src4 = Number(p.src) | 0, dst4 = Number(p.dst) | 0;
  for (;;) {
    if (i >= rules.length) {
      if (first) w.firstStep?.(p.mark);
      first = false;
      if (cc.builtin) return policy(w, base, table, hook);
      w.steps.push({ hook, table, chain: cc.chain.name, kind: 'return', rule: null, verdict: 'RETURN', target: undefined, text: undefined, comment: undefined, packet: undefined, notes: undefined });
      if (!stack?.length) return policy(w, base, table, hook);
      i = stack.pop() as number;
      rules = stack.pop() as CompiledRule[];
      cc = stack.pop() as CompiledChain;
      continue;
    }
    const r = rules[i];
    i++;
    if (!compiledHeaderMatches(r, p, src4, dst4)) continue;
    ctx.notes = undefined;
    if (r.fn0 !== undefined && !evalMatches(w, r, p, ctx)) continue;
    let res = r.result;
    let verdict = r.verdict;
    let packet: PacketView | undefined;
    if (r.targetKind !== TargetKind.Static) {
      // only targets change the packet: the kernel hands matches a const skb, and so do the extensions here
      const src = p.src, dst = p.dst, sport = p.sport, dport = p.dport, mark = p.mark;
      res = evalTarget(w, r, p, ctx);
      if (w.pendingNat) res = w.afterTarget(table, hook, p, ctx) ?? res;
      verdict = VERDICT[res.verdict];
      if (p.src !== src || p.dst !== dst || p.sport !== sport || p.dport !== dport || p.mark !== mark) {
        packet = viewPacket(p);
        src4 = Number(p.src) | 0;
        dst4 = Number(p.dst) | 0;
      }
    }
    const name = cc.chain.name;
    // every step is built in one shape (absent fields undefined), which keeps the walk monomorphic
    w.steps.push({
      hook, table, chain: name, kind: 'rule', rule: r.num, verdict,
      target: res.verdict === 'jump' || res.verdict === 'goto' ? res.chain : r.targetName,
      text: ruleLine(name, r, p.family),
      comment: r.comment,
      packet,
      notes: ctx.notes,
    });
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
        return { verdict: res.verdict, chain: name, rule: r.num };
      case 'reject':
        return { verdict: 'reject', rejectWith: res.with, chain: name, rule: r.num };
      case 'jump':
      case 'goto': {
        // a static jump's chain is looked up once, the first time the rule fires
        const next = res === r.result ? (r.next ??= chainOf(ct, res.chain)) : chainOf(ct, res.chain);
        if (!next) throw new Error(`jump to missing chain ${res.chain}: the ruleset was not checked`);
        if (res.verdict === 'jump') (stack ??= []).push(cc, rules, i);
        cc = next;
        rules = candidates(next, p);
        i = 0;
        continue;
      }
      case 'return': {
        if (!stack?.length) return policy(w, base, table, hook);
        i = stack.pop() as number;
        rules = stack.pop() as CompiledRule[];
        cc = stack.pop() as CompiledChain;
        continue;
      }
    }
  }
}
