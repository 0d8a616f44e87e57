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
  // only extensions read the rule's protocol from the context
  const pctx = ctx.protocol === r.protocol || (!r.matches.length && r.target?.kind !== 'extension') ? ctx : { ...ctx, protocol: r.protocol };
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
  // iptables-save's own output is sorted already, which one pass finds out
  let sorted = [...user.keys()];
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i - 1] > sorted[i]) {
      sorted = sortNames(sorted);
      break;
    }
  for (const n of sorted) builtin.push(user.get(n)!);
  return builtin;
}

/** Where a name's position sits in a sort key, below its two characters. */
const SHIFT = 1 << 17;

/**
 * Distinct strings in UTF-16 code unit order, as Array.prototype.sort orders them (byte order for
 * ASCII names). kube-proxy's 40,000 chain names share long prefixes (`KUBE-SEP-`), on which a
 * comparison sort spends most of its time: this sorts by the two characters after the group's
 * common prefix as numbers (a typed array's sort), then each group of names that tie on them the
 * same way, down to small groups that the native sort takes.
 */
function sortNames(names: string[]): string[] {
  if (names.length >= SHIFT) return names.sort();
  const out: string[] = new Array(names.length);
  // groups still to order, each with the place in `out` where it starts; one loop rather than
  // recursion, so that its code is compiled once with every path seen
  const groups: string[][] = [names];
  const starts: number[] = [0];
  while (groups.length) {
    const group = groups.pop()!;
    let at = starts.pop()!;
    if (group.length <= 16) {
      group.sort();
      for (let k = 0; k < group.length; k++) out[at++] = group[k];
      continue;
    }
    const first = group[0];
    let lcp = first.length;
    for (let k = 1; k < group.length && lcp > 0; k++) {
      const s = group[k];
      const m = Math.min(lcp, s.length);
      let i = 0;
      while (i < m && s.charCodeAt(i) === first.charCodeAt(i)) i++;
      lcp = i;
    }
    // a missing character (a shorter name) is 0, before every character (1 + its code)
    const keys = new Float64Array(group.length);
    for (let k = 0; k < group.length; k++) {
      const s = group[k];
      const a = lcp < s.length ? s.charCodeAt(lcp) + 1 : 0;
      const b = lcp + 1 < s.length ? s.charCodeAt(lcp + 1) + 1 : 0;
      keys[k] = (a * SHIFT + b) * SHIFT + k;
    }
    keys.sort();
    for (let k = 0; k < keys.length; ) {
      const key = Math.floor(keys[k] / SHIFT);
      let e = k + 1;
      while (e < keys.length && Math.floor(keys[e] / SHIFT) === key) e++;
      if (e - k === 1) out[at++] = group[keys[k] % SHIFT];
      else {
        // names that tie on both characters have both, so the group's next prefix is longer
        const sub: string[] = [];
        for (let q = k; q < e; q++) sub.push(group[keys[q] % SHIFT]);
        groups.push(sub);
        starts.push(at);
        at += sub.length;
      }
      k = e;
    }
  }
  return out;
}

/** One table in save form: `*name`, chain lines, rules, `COMMIT`. */
export function saveTable(t: Table, family: Ruleset['family'], opts: SaveOptions = {}): string {
  const ctx: PrintContext = { family, numeric: true };
  const chains = orderedChains(t);
  const counters = !!opts.counters;
  const out = new LineJoiner();
  out.push(`*${t.name}`);
  for (const c of chains) out.push(chainLine(t, c, counters));
  // indexed loops: this one runs once per table, long before it is optimised, and an iterator
  // per chain is garbage
  for (let k = 0; k < chains.length; k++) {
    const c = chains[k];
    const rules = c.rules;
    for (let j = 0; j < rules.length; j++) out.push(saveRule(c.name, rules[j], ctx, counters));
  }
  out.push('COMMIT');
  return out.text() + '\n';
}

/**
 * Lines joined by newlines a few hundred at a time: a line built by concatenation is a tree of
 * pieces until it is joined, and holding 100,000 such trees until the end costs more memory and
 * garbage collection than the text itself.
 */
class LineJoiner {
  private lines: string[] = [];
  private chunks: string[] = [];

  push(line: string): void {
    if (this.lines.push(line) === 512) {
      this.chunks.push(this.lines.join('\n'));
      this.lines = [];
    }
  }

  /** All lines; the chunks are appended to each other, not copied into one more string. */
  text(): string {
    if (this.lines.length || !this.chunks.length) this.chunks.push(this.lines.join('\n'));
    let text = this.chunks[0];
    for (let k = 1; k < this.chunks.length; k++) text += '\n' + this.chunks[k];
    return text;
  }
}

/** A whole ruleset in save form (no `#` header or footer lines). */
export function saveRuleset(rs: Ruleset, opts: SaveOptions = {}): string {
  // tables are appended rather than joined: a join would copy the whole text once more
  let out = '';
  for (const t of rs.tables) if (!opts.table || t.name === opts.table) out += saveTable(t, rs.family, opts);
  return out;
}
