/**
 * The `iptables -S` form: `-P` for built-in chains, `-N` for user chains (in the order
 * iptables-save lists them), then every rule as iptables-save prints it. Both backends agree.
 */
import { InputError } from '../model/issue';
import { emptyTable, getChain, getTable, isBuiltin, type Chain, type Rule, type Ruleset, type TableName } from '../model/ruleset';
import type { PrintContext } from '../extensions/types';
import { orderedChains, saveRuleSpec } from './save';

export interface SOptions {
  table: TableName;
  /** Only this chain (`-S CHAIN`). */
  chain?: string;
  /** `-v -S`: `-c PACKETS BYTES` on policies and rules. */
  counters?: boolean;
}

/**
 * One `-A` line. Under -v the kernel's -S puts `-c P B` after the matches and before the target
 * (`-A X -p tcp -m tcp --dport 80 -c 1 2 -j ACCEPT`), or at the end of a rule without target.
 */
export function sRule(chain: string, r: Rule, ctx: PrintContext, counters: boolean): string {
  const full = saveRuleSpec(r, ctx);
  if (!counters) return `-A ${chain}${full}`;
  const head = saveRuleSpec({ ...r, target: undefined }, ctx);
  return `-A ${chain}${head} -c ${r.counters?.packets ?? 0} ${r.counters?.bytes ?? 0}${full.slice(head.length)}`;
}

function chainLine(table: TableName, c: Chain, counters: boolean): string {
  if (!isBuiltin(table, c.name)) return `-N ${c.name}`;
  return `-P ${c.name} ${c.policy ?? 'ACCEPT'}` + (counters ? ` -c ${c.counters?.packets ?? 0} ${c.counters?.bytes ?? 0}` : '');
}

/** `iptables -t T -S [CHAIN]` (with `-v`, counters), byte for byte. */
export function printS(rs: Ruleset, opts: SOptions): string {
  const t = getTable(rs, opts.table) ?? emptyTable(opts.table);
  let chains = orderedChains(t);
  if (opts.chain !== undefined) {
    const c = getChain(t, opts.chain);
    if (!c) throw new InputError([{ severity: 'error', code: 'no-chain', message: `chain \`${opts.chain}' does not exist in table \`${opts.table}' (iptables: No chain/target/match by that name.)` }]);
    chains = [c];
  }
  const ctx: PrintContext = { family: rs.family, numeric: true };
  const counters = !!opts.counters;
  const out = chains.map((c) => chainLine(t.name, c, counters));
  for (const c of chains) for (const r of c.rules) out.push(sRule(c.name, r, ctx, counters));
  return out.join('\n') + '\n';
}
