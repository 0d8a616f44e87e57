/** The option column of `iptables -L`: each match's and the target's print text, in order. */
import { getMatch, getTarget } from '../extensions/index';
import type { PrintContext } from '../extensions/types';
import type { Rule } from '../model/ruleset';

/** The text iptables -L prints after the destination column for this rule. */
export function listRuleOptions(r: Rule, ctx: PrintContext): string {
  const pctx = { ...ctx, protocol: r.protocol };
  let s = '';
  for (const m of r.matches) {
    if (m.kind === 'match') s += getMatch(m.name)!.list(m.info, pctx);
    else s += ` ${m.name} ${m.tokens.join(' ')}`;
  }
  const t = r.target;
  if (t?.kind === 'extension') s += getTarget(t.name)!.list(t.info, pctx);
  else if (t?.kind === 'goto') s += ` [goto] `;
  return s;
}
