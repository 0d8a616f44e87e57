/**
 * The iptables-save text of a generated ruleset, identical to syntax/save's saveRuleset (a unit
 * test holds them equal) but remembering the text of each shared match, target and address: a
 * node with 30,000 Services has 300,000 rules built from a few thousand distinct pieces.
 */
import { formatCidr, type Cidr, type Family } from '../../model/addr';
import { getMatch, getTarget } from '../../extensions/index';
import type { PrintContext } from '../../extensions/types';
import type { MatchInstance, Negatable, Rule, Ruleset, Target } from '../../model/ruleset';
import { orderedChains, quoteToken } from '../../syntax/save';
import { isBuiltin } from '../../model/ruleset';

/** Text memo keyed by object identity, then by the rule's protocol (extension text may depend on it). */
class Memo<K extends object> {
  private map = new WeakMap<K, Map<string, string>>();
  get(k: K, proto: string, make: () => string): string {
    let m = this.map.get(k);
    if (!m) this.map.set(k, (m = new Map()));
    let s = m.get(proto);
    if (s === undefined) m.set(proto, (s = make()));
    return s;
  }
}

const printMatch = (m: MatchInstance, ctx: PrintContext): string =>
  m.kind === 'unknown' ? ` -m ${m.name}${m.tokens.map((t) => ' ' + quoteToken(t)).join('')}` : ` -m ${m.name}${getMatch(m.name)!.save(m.info, ctx)}`;

/** formatCidr for IPv4 in plain numbers (the bigint path was a sixth of the printing time). */
function quad(c: Cidr): string {
  const v = Number(c.addr);
  const m = Number(c.mask);
  const inv = ~m >>> 0;
  if ((inv & (inv + 1)) !== 0) return formatCidr(c);
  const prefix = 32 - Math.log2(inv + 1);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${prefix}`;
}

/** A printer of the part of a rule after `-A CHAIN`, as saveRuleSpec prints it, remembering shared pieces. */
export function specRenderer(family: Family): (r: Rule) => string {
  const matches = new Memo<MatchInstance>();
  const targets = new Memo<Target>();
  const cidrs = new WeakMap<Cidr, string>();
  const addr = (flag: string, a: Negatable<Cidr> | undefined): string => {
    if (!a || (a.value.mask === 0n && a.value.addr === 0n && !a.invert)) return '';
    let t: string | undefined;
    // IPv4 prints faster than a lookup; IPv6 goes through inet_ntop's rules once per address.
    if (a.value.family === 'ipv4') t = quad(a.value);
    else if ((t = cidrs.get(a.value)) === undefined) cidrs.set(a.value, (t = formatCidr(a.value)));
    return `${a.invert ? ' !' : ''} -${flag} ${t}`;
  };
  const iface = (flag: string, i: Negatable<string> | undefined) => (i ? `${i.invert ? ' !' : ''} -${flag} ${i.value}` : '');
  const spec = (r: Rule): string => {
    let s = addr('s', r.source) + addr('d', r.destination) + iface('i', r.inInterface) + iface('o', r.outInterface);
    if (r.protocol && r.protocol.value !== 'all') s += `${r.protocol.invert ? ' !' : ''} -p ${r.protocol.value}`;
    if (r.fragment) s += `${r.fragment.invert ? ' !' : ''} -f`;
    const proto = r.protocol ? `${r.protocol.invert ? '!' : ''}${r.protocol.value}` : '';
    let c: PrintContext | undefined;
    const ctx = () => (c ??= { family, numeric: true, protocol: r.protocol });
    // Comments are shared by the rules of one service (see rules.ts), so they are remembered too.
    for (const m of r.matches) s += matches.get(m, proto, () => printMatch(m, ctx()));
    const t = r.target;
    if (t) {
      // Jumps and verdicts are cheaper to print than to look up; a DNAT names one endpoint.
      if (t.kind === 'standard') s += ` -j ${t.verdict}`;
      else if (t.kind === 'jump') s += ` -j ${t.chain}`;
      else if (t.kind === 'goto') s += ` -g ${t.chain}`;
      else if (t.kind === 'unknown') s += ` -j ${t.name}${t.tokens.map((x) => ' ' + quoteToken(x)).join('')}`;
      else if (t.name === 'DNAT') s += ` -j ${t.name}${getTarget(t.name)!.save(t.info, ctx())}`;
      else s += targets.get(t, proto, () => ` -j ${t.name}${getTarget(t.name)!.save(t.info, ctx())}`);
    }
    return s;
  };
  return spec;
}

/** The whole ruleset in save form, as saveRuleset prints it. */
export function renderSave(rs: Ruleset): string {
  const spec = specRenderer(rs.family);
  // Joined chain by chain: one array of 300,000 lines costs more memory than the text itself.
  const parts: string[] = [];
  for (const t of rs.tables) {
    const chains = orderedChains(t);
    parts.push(`*${t.name}\n` + chains.map((c) => `:${c.name} ${isBuiltin(t.name, c.name) ? c.policy ?? 'ACCEPT' : '-'} [0:0]\n`).join(''));
    for (const c of chains) if (c.rules.length) parts.push(c.rules.map((r) => `-A ${c.name}${spec(r)}\n`).join(''));
    parts.push('COMMIT\n');
  }
  return parts.join('');
}
