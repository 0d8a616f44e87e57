/**
 * The `iptables -L` listing, byte for byte as iptables 1.8.9 prints it (both backends print the
 * same: checked with `-L` under every combination of -n, -v, -x and --line-numbers).
 */
import { formatIP, prefixOf, type Cidr, type Family } from '../model/addr';
import { InputError } from '../model/issue';
import { protocolName, protocolNumber } from '../model/protocols';
import { emptyTable, getChain, getTable, isBuiltin, type Chain, type Negatable, type Rule, type Ruleset, type Table, type TableName } from '../model/ruleset';
import { getMatch, getTarget } from '../extensions/index';
import type { NameTables, PrintContext } from '../extensions/types';
import { orderedChains } from './save';

/** The text iptables -L prints after the destination column for this rule. */
export function listRuleOptions(r: Rule, ctx: PrintContext): string {
  const pctx = { ...ctx, protocol: r.protocol };
  // `[goto] ` comes before the matches: `-A X -p tcp --sport 1:1024 -g U` lists as `[goto]  tcp spts:1:1024`
  let s = r.target?.kind === 'goto' ? '[goto] ' : '';
  for (const m of r.matches) {
    if (m.kind === 'match') s += getMatch(m.name)!.list(m.info, pctx);
    else s += ` ${m.name} ${m.tokens.join(' ')}`;
  }
  const t = r.target;
  if (t?.kind === 'extension') s += getTarget(t.name)!.list(t.info, pctx);
  return s;
}

/** What `iptables -L` was asked for. */
export interface ListOptions {
  table: TableName;
  /** Only this chain (`-L CHAIN`). */
  chain?: string;
  /** `-n`: addresses, ports and protocols as numbers. */
  numeric: boolean;
  /** `-v`: counters and interfaces. */
  verbose: boolean;
  /** `-x`: exact counters instead of the K/M/G short form. */
  exact: boolean;
  lineNumbers: boolean;
  names?: NameTables;
}

/**
 * A counter as xtables_print_num prints it: exact under -x (`%8llu `), else up to 99999 as is and
 * then rounded to K, M, G, T (`(n + 500) / 1000` at each step: 1234567 lists as `1235K`).
 * `table` false is the chain header's form, without padding.
 */
export function formatCount(n: number, exact: boolean, table = true): string {
  if (exact) return table ? String(n).padStart(8) + ' ' : `${n} `;
  if (n <= 99999) return table ? String(n).padStart(5) + ' ' : `${n} `;
  let v = BigInt(n);
  for (const unit of ['K', 'M', 'G']) {
    v = (v + 500n) / 1000n;
    if (v <= 9999n) return table ? `${String(v).padStart(4)}${unit} ` : `${v}${unit} `;
  }
  v = (v + 500n) / 1000n;
  return table ? `${String(v).padStart(4)}T ` : `${v}T `;
}

/** An address column: `anywhere` (or `0.0.0.0/0` under -n) for a zero mask, else address and mask. */
export function listAddress(c: Cidr | undefined, family: Family, numeric: boolean, names?: NameTables): string {
  if (!c || c.mask === 0n) return numeric ? (family === 'ipv4' ? '0.0.0.0/0' : '::/0') : 'anywhere';
  // ip6tables names the address, not the mask: `-s ::/16` lists as `anywhere` (IPv4's 0.0.0.0/1 as `default/1`)
  if (family === 'ipv6' && !numeric && c.addr === 0n) return 'anywhere';
  const text = formatIP(c.addr, family);
  // without -n, iptables asks the resolver (/etc/hosts, then /etc/networks for IPv4): 127.0.0.0/8 lists as loopback/8
  const name = numeric ? undefined : names?.hosts?.get(text);
  const p = prefixOf(c.mask, family);
  const full = family === 'ipv4' ? 32 : 128;
  const mask = p === full ? '' : p >= 0 ? `/${p}` : `/${formatIP(c.mask, family)}`;
  return (name ?? text) + mask;
}

/** The protocol column: a number under -n (1.8.9 prints `6`, `0`), else its name, `all` for 0. */
function listProtocol(p: Negatable<string> | undefined, numeric: boolean): string {
  const n = p ? protocolNumber(p.value) ?? 0 : 0;
  if (numeric) return String(n);
  return n === 0 ? 'all' : protocolName(n);
}

function targetName(r: Rule): string {
  const t = r.target;
  if (!t) return '';
  if (t.kind === 'standard') return t.verdict;
  if (t.kind === 'jump' || t.kind === 'goto') return t.chain;
  return (t.kind === 'extension' && getTarget(t.name)?.listName) || t.name;
}

const pad = (s: string, n: number) => s.padEnd(n);

function iface(i: Negatable<string> | undefined, numeric: boolean): string {
  return (i?.invert ? '!' : '') + (i ? i.value : numeric ? '*' : 'any');
}

/** The column header line of a chain. */
function columnHeader(o: ListOptions): string {
  let s = o.lineNumbers ? 'num  ' : '';
  if (o.verbose) s += o.exact ? '    pkts      bytes ' : ' pkts bytes ';
  s += 'target     prot opt';
  if (o.verbose) s += ' in     out    ';
  return s + ' source               destination         ';
}

/** One rule line, as print_firewall lays it out; a longer value widens its column. */
export function listRule(r: Rule, num: number, family: Family, o: ListOptions): string {
  let s = o.lineNumbers ? pad(String(num), 4) + ' ' : '';
  if (o.verbose) s += formatCount(r.counters?.packets ?? 0, o.exact) + formatCount(r.counters?.bytes ?? 0, o.exact);
  s += pad(targetName(r), 9) + ' ';
  s += (r.protocol?.invert ? '!' : ' ') + pad(listProtocol(r.protocol, o.numeric), 4) + ' ';
  s += (r.fragment?.invert ? '!' : '-') + (r.fragment ? 'f' : '-') + ' ';
  if (o.verbose) s += ' ' + pad(iface(r.inInterface, o.numeric), 6) + ' ' + pad(iface(r.outInterface, o.numeric), 6) + ' ';
  for (const a of [r.source, r.destination]) s += (a?.invert ? '!' : ' ') + pad(listAddress(a?.value, family, o.numeric, o.names), 19) + ' ';
  return s + listRuleOptions(r, { family, numeric: o.numeric, names: o.names });
}

/** How many rules of the table jump or go to `name` (the `N references` of a user chain). */
export function references(t: Table, name: string): number {
  let n = 0;
  for (const c of t.chains) for (const r of c.rules) if ((r.target?.kind === 'jump' || r.target?.kind === 'goto') && r.target.chain === name) n++;
  return n;
}

function chainHeader(t: Table, c: Chain, o: ListOptions): string {
  if (!isBuiltin(t.name, c.name)) return `Chain ${c.name} (${references(t, c.name)} references)`;
  const counts = o.verbose
    ? ` ${formatCount(c.counters?.packets ?? 0, o.exact, false)}packets, ${formatCount(c.counters?.bytes ?? 0, o.exact, false)}bytes`
    : '';
  return `Chain ${c.name} (policy ${c.policy ?? 'ACCEPT'}${counts})`;
}

/** The whole `iptables -t T -L [CHAIN] [-n] [-v] [-x] [--line-numbers]` output. */
export function listRuleset(rs: Ruleset, o: ListOptions): string {
  const t = getTable(rs, o.table) ?? emptyTable(o.table);
  let chains = orderedChains(t);
  if (o.chain !== undefined) {
    const c = getChain(t, o.chain);
    // the kernel's answer to `-L NOSUCH`
    if (!c) throw new InputError([{ severity: 'error', code: 'no-chain', message: `chain \`${o.chain}' does not exist in table \`${o.table}' (iptables: No chain/target/match by that name.)` }]);
    chains = [c];
  }
  const blocks = chains.map((c) => {
    const lines = [chainHeader(t, c, o), columnHeader(o)];
    c.rules.forEach((r, k) => lines.push(listRule(r, k + 1, rs.family, o)));
    return lines.join('\n') + '\n';
  });
  return blocks.join('\n');
}
