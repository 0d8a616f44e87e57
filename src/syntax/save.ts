/**
 * The iptables-save form, byte for byte as iptables 1.8.9 prints it (print_rule4/print_rule6 and
 * each extension's save function), `#` header and footer aside.
 */
import { formatCidr, type Cidr } from '../model/addr';
import { getMatch, getTarget } from '../extensions/index';
import type { PrintContext } from '../extensions/types';
import type { Chain, Hook, Negatable, Rule, Ruleset, Table } from '../model/ruleset';
import { BUILTIN_CHAINS, isBuiltin } from '../model/ruleset';

export interface SaveOptions {
  /** Print counters as `iptables-save -c` does (`[p:b]` before each rule, real chain counters). */
  counters?: boolean;
  /** Only this table. */
  table?: string;
}

/** The last address printed (by value) and its text: rules in a row share one (a dump's pod CIDR on every Service). */
let lastFamily = '';
let lastAddr = 0n;
let lastMask = 0n;
let lastText = '';

const addr = (flag: string, a: Negatable<Cidr> | undefined): string => {
  if (!a) return '';
  const c = a.value;
  if (c.mask === 0n && c.addr === 0n && !a.invert) return '';
  if (c.addr !== lastAddr || c.mask !== lastMask || c.family !== lastFamily) {
    lastText = formatCidr(c);
    lastFamily = c.family;
    lastAddr = c.addr;
    lastMask = c.mask;
  }
  return (a.invert ? ' ! -' : ' -') + flag + ' ' + lastText;
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
  // only extensions read the rule's protocol from the context
  if (ctx.protocol === r.protocol || (!r.matches.length && r.target?.kind !== 'extension')) return ruleSpec(r, ctx);
  return ruleSpec(r, { ...ctx, protocol: r.protocol });
}

/** saveRuleSpec with `ctx.protocol` already the rule's. */
function ruleSpec(r: Rule, ctx: PrintContext): string {
  let s = r.source ? addr('s', r.source) : '';
  if (r.destination) s += addr('d', r.destination);
  if (r.inInterface) s += iface('i', r.inInterface);
  if (r.outInterface) s += iface('o', r.outInterface);
  if (r.protocol && r.protocol.value !== 'all') s += (r.protocol.invert ? ' ! -p ' : ' -p ') + r.protocol.value;
  if (r.fragment) s += r.fragment.invert ? ' ! -f' : ' -f';
  const matches = r.matches;
  for (let k = 0; k < matches.length; k++) {
    const m = matches[k];
    if (m.kind === 'unknown') s += ` -m ${m.name}${verbatim(m.tokens)}`;
    else s += ' -m ' + m.name + getMatch(m.name)!.save(m.info, ctx);
  }
  const t = r.target;
  if (t) {
    if (t.kind === 'standard') s += ' -j ' + t.verdict;
    else if (t.kind === 'jump') s += ' -j ' + t.chain;
    else if (t.kind === 'goto') s += ' -g ' + t.chain;
    else if (t.kind === 'extension') s += ' -j ' + t.name + getTarget(t.name)!.save(t.info, ctx);
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
  const builtins = BUILTIN_CHAINS[t.name];
  const out: Chain[] = [];
  const user: Chain[] = [];
  const chains = t.chains;
  for (let k = 0; k < chains.length; k++) {
    const c = chains[k];
    // no built-in chain's name is longer than POSTROUTING's, and most user chains' are
    if (c.name.length <= 11 && builtins.includes(c.name as Hook)) out.push(c);
    else user.push(c);
  }
  // iptables-save's own output is sorted already, which one pass finds out
  let sorted = true;
  for (let i = 1; i < user.length && sorted; i++) if (user[i - 1].name > user[i].name) sorted = false;
  const byName = sorted ? user : sortChains(user);
  // a name given to two chains is one chain, the last one with that name (as a lookup by name finds it)
  for (let i = 0; i < byName.length; i++)
    if (i + 1 === byName.length || byName[i + 1].name !== byName[i].name) out.push(byName[i]);
  return out;
}

/** Where an item's place in its group sits in a sort key, below its characters. */
const SHIFT = 1 << 17;

/**
 * Chains in UTF-16 code unit order of their names, as Array.prototype.sort orders strings (byte
 * order for ASCII names), chains of the same name in their given order. kube-proxy's 40,000 chain
 * names share long prefixes (`KUBE-SEP-`), on which a comparison sort spends most of its time:
 * this sorts by the characters after the group's common prefix as numbers (a typed array's sort;
 * five characters of seven bits when they are ASCII, else two), then each group of chains that tie
 * on them the same way, down to small groups that a comparison sort takes.
 */
function sortChains(chains: Chain[]): Chain[] {
  const names = chains.map((c) => c.name);
  const byIndex = (a: number, b: number) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : a - b);
  const all = Array.from({ length: names.length }, (_, k) => k);
  if (names.length >= SHIFT) return all.sort(byIndex).map((k) => chains[k]);
  const out: Chain[] = new Array(names.length);
  // groups still to order (chain numbers), each with the place in `out` where it starts; one loop
  // rather than recursion, so that its code is compiled once with every path seen
  const groups: number[][] = [all];
  const starts: number[] = [0];
  while (groups.length) {
    const group = groups.pop()!;
    let at = starts.pop()!;
    if (group.length <= 16) {
      group.sort(byIndex);
      for (let k = 0; k < group.length; k++) out[at++] = chains[group[k]];
      continue;
    }
    const first = names[group[0]];
    let lcp = first.length;
    let ascii = true;
    for (let k = 1; k < group.length && lcp > 0; k++) {
      const s = names[group[k]];
      const m = Math.min(lcp, s.length);
      let i = 0;
      while (i < m && s.charCodeAt(i) === first.charCodeAt(i)) i++;
      lcp = i;
    }
    // the places the key reads: from the common prefix on, leaving out those where every name has
    // the same character (`-` in `KUBE-SEP-`), which cannot order them
    const at5 = keyPlaces(names, group, lcp);
    const [p0, p1, p2, p3, p4] = at5;
    // a missing character (a shorter name) is 0, before every character (1 + its code); this
    // loop runs once per dump, mostly before it is optimised, so it is written out
    const keys = new Float64Array(group.length);
    for (let k = 0; k < group.length; k++) {
      const s = names[group[k]];
      const c0 = charAt(s, p0), c1 = charAt(s, p1), c2 = charAt(s, p2), c3 = charAt(s, p3), c4 = charAt(s, p4);
      if ((c0 | c1 | c2 | c3 | c4) >= 128) ascii = false;
      keys[k] = ((((c0 * 128 + c1) * 128 + c2) * 128 + c3) * 128 + c4) * SHIFT + k;
    }
    if (!ascii)
      for (let k = 0; k < group.length; k++) {
        const s = names[group[k]];
        keys[k] = (charAt(s, p0) * 65537 + charAt(s, p1)) * SHIFT + k;
      }
    const base = ascii ? 128 : 65537;
    keys.sort();
    for (let k = 0; k < keys.length; ) {
      const key = Math.floor(keys[k] / SHIFT);
      let e = k + 1;
      while (e < keys.length && Math.floor(keys[e] / SHIFT) === key) e++;
      // names that tie on every character of the key and end inside it are the same name (a
      // place left out has a character in every name, so a name's end is a place of the key)
      const ended = key % base === 0;
      if (e - k === 1 || ended) for (let q = k; q < e; q++) out[at++] = chains[group[keys[q] % SHIFT]];
      else {
        // chains that tie on the key share a longer prefix, so the next round goes further
        const sub: number[] = [];
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

/** 1 + the code of the character of `s` at `i`, 0 past its end. */
const charAt = (s: string, i: number): number => (i < s.length ? s.charCodeAt(i) + 1 : 0);

/**
 * Five places of the names of `group` from `lcp` on where they do not all have the same character
 * (a place past the end of some name always counts): what the next round of the sort compares.
 */
function keyPlaces(names: string[], group: number[], lcp: number): number[] {
  const places: number[] = [];
  const first = names[group[0]];
  for (let i = lcp; places.length < 5; i++) {
    let same = i > lcp && i < first.length;
    const c = same ? first.charCodeAt(i) : -1;
    for (let k = 1; k < group.length && same; k++) {
      const s = names[group[k]];
      same = i < s.length && s.charCodeAt(i) === c;
    }
    if (!same) places.push(i);
  }
  return places;
}

/** One table in save form: `*name`, chain lines, rules, `COMMIT`. */
export function saveTable(t: Table, family: Ruleset['family'], opts: SaveOptions = {}): string {
  // one context for the table, its protocol set to each rule's in turn (extensions read it)
  const ctx: PrintContext = { family, numeric: true, protocol: undefined };
  const chains = orderedChains(t);
  const counters = !!opts.counters;
  const out = new LineJoiner();
  out.push(`*${t.name}`);
  for (let k = 0; k < chains.length; k++) out.push(chainLine(t, chains[k], counters));
  // indexed loops: this one runs once per table, long before it is optimised, and an iterator
  // per chain is garbage
  for (let k = 0; k < chains.length; k++) {
    const c = chains[k];
    const head = '-A ' + c.name;
    const rules = c.rules;
    for (let j = 0; j < rules.length; j++) {
      const r = rules[j];
      ctx.protocol = r.protocol;
      out.push(counters ? `[${r.counters?.packets ?? 0}:${r.counters?.bytes ?? 0}] ${head}${ruleSpec(r, ctx)}` : head + ruleSpec(r, ctx));
    }
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
