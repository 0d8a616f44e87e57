/**
 * The iptables-save form, byte for byte as iptables 1.8.9 prints it (print_rule4/print_rule6 and
 * each extension's save function), `#` header and footer aside.
 */
import { formatCidr, type Cidr } from '../model/addr';
import { getMatch, getTarget } from '../extensions/index';
import type { PrintContext } from '../extensions/types';
import type { Chain, Negatable, Rule, Ruleset, Table } from '../model/ruleset';
import { BUILTIN_CHAINS, isBuiltin } from '../model/ruleset';

export interface SaveOptions {
  /** Print counters as `iptables-save -c` does (`[p:b]` before each rule, real chain counters). */
  counters?: boolean;
  /** Only this table. */
  table?: string;
}

const addr = (flag: string, a: Negatable<Cidr> | undefined): string => {
  if (!a) return '';
  if (a.value.mask === 0n && a.value.addr === 0n && !a.invert) return '';
  return `${a.invert ? ' !' : ''} -${flag} ${formatCidr(a.value)}`;
};

/**
 * `-i +` matches every interface and both backends leave it out of iptables-save. `! -i +` (which
 * never matches) is where they part: nft prints it, legacy drops it (its mask is empty); podtables
 * prints it, as nft does, so that the rule keeps its meaning.
 */
const iface = (flag: string, i: Negatable<string> | undefined): string =>
  !i || (i.value === '+' && !i.invert) ? '' : `${i.invert ? ' !' : ''} -${flag} ${i.value}`;

/** The part of a rule after `-A CHAIN`, with its leading space (empty for a bare rule). */
export function saveRuleSpec(r: Rule, ctx: PrintContext): string {
  let s = addr('s', r.source) + addr('d', r.destination) + iface('i', r.inInterface) + iface('o', r.outInterface);
  if (r.protocol && r.protocol.value !== 'all') s += `${r.protocol.invert ? ' !' : ''} -p ${r.protocol.value}`;
  if (r.fragment) s += `${r.fragment.invert ? ' !' : ''} -f`;
  const pctx = ctx.protocol === r.protocol ? ctx : { ...ctx, protocol: r.protocol };
  for (const m of r.matches) {
    if (m.kind === 'unknown') s += ` -m ${m.name}${verbatim(m.tokens)}`;
    else s += ` -m ${m.name}${getMatch(m.name)!.save(m.info, pctx)}`;
  }
  const t = r.target;
  if (t) {
    if (t.kind === 'standard') s += ` -j ${t.verdict}`;
    else if (t.kind === 'jump') s += ` -j ${t.chain}`;
    else if (t.kind === 'goto') s += ` -g ${t.chain}`;
    else if (t.kind === 'extension') s += ` -j ${t.name}${getTarget(t.name)!.save(t.info, pctx)}`;
    else s += ` -j ${t.name}${verbatim(t.tokens)}`;
  }
  return s;
}

function verbatim(tokens: string[]): string {
  let s = '';
  for (const t of tokens) s += ' ' + quoteToken(t);
  return s;
}

/**
 * Quote a verbatim token again so that it reads back as the same word. Tokens the parser kept
 * from quoted input already hold their printed, quoted form.
 */
export function quoteToken(t: string): string {
  if (t.length >= 2 && t[0] === '"' && t[t.length - 1] === '"') return t;
  return t === '' || /[\s"\\]/.test(t) ? `"${t.replace(/(["\\])/g, '\\$1')}"` : t;
}

/** One `-A` line (without the newline). */
export function saveRule(chain: string, r: Rule, ctx: PrintContext, counters = false): string {
  const c = counters ? `[${r.counters?.packets ?? 0}:${r.counters?.bytes ?? 0}] ` : '';
  return `${c}-A ${chain}${saveRuleSpec(r, ctx)}`;
}

function chainLine(t: Table, c: Chain, counters: boolean): string {
  const cnt = counters && c.counters ? `[${c.counters.packets}:${c.counters.bytes}]` : '[0:0]';
  return `:${c.name} ${isBuiltin(t.name, c.name) ? c.policy ?? 'ACCEPT' : '-'} ${cnt}`;
}

/** User-defined chains sorted as libiptc and iptables-nft list them (byte order of names). */
export function orderedChains(t: Table): Chain[] {
  const names = new Set<string>(BUILTIN_CHAINS[t.name]);
  const builtin: Chain[] = [];
  const user = new Map<string, Chain>();
  for (const c of t.chains) {
    if (names.has(c.name)) builtin.push(c);
    else user.set(c.name, c);
  }
  // the native sort of plain strings (UTF-16 order, which is byte order for ASCII names) is far
  // quicker than a comparator over 40,000 kube-proxy chains
  const sorted = [...user.keys()].sort();
  for (const n of sorted) builtin.push(user.get(n)!);
  return builtin;
}

/** One table in save form: `*name`, chain lines, rules, `COMMIT`. */
export function saveTable(t: Table, family: Ruleset['family'], opts: SaveOptions = {}): string {
  const ctx: PrintContext = { family, numeric: true };
  const chains = orderedChains(t);
  const out: string[] = [`*${t.name}`];
  for (const c of chains) out.push(chainLine(t, c, !!opts.counters));
  for (const c of chains) for (const r of c.rules) out.push(saveRule(c.name, r, ctx, !!opts.counters));
  out.push('COMMIT');
  return out.join('\n') + '\n';
}

/** A whole ruleset in save form (no `#` header or footer lines). */
export function saveRuleset(rs: Ruleset, opts: SaveOptions = {}): string {
  return rs.tables
    .filter((t) => !opts.table || t.name === opts.table)
    .map((t) => saveTable(t, rs.family, opts))
    .join('');
}
