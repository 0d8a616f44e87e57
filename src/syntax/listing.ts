/**
 * Importing `iptables -L` listings (with or without -n, -v, -x, --line-numbers) back into a
 * Ruleset. A listing cannot say everything: without -v there are no interfaces and no counters,
 * without -n names stand for numbers, K/M/G counters are rounded, and some options print
 * nothing. What the text says is imported; each thing it could not say is a warning Issue at
 * its line, never a silent guess. Listings are found inside larger text (markdown, shell
 * transcripts): lines that are not part of a listing are skipped.
 */
import { parseIP, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { isBuiltin, type Counters, type MatchInstance, type TableName } from '../model/ruleset';
import type { NameTables } from '../extensions/types';
import { RulesetBuilder } from './builder';
import { parseCommand } from './command';
import type { ParseResult } from './restore';
import { unlistHost, unlistOptions } from './listing-options';

export interface ListingOptions {
  /** The table of a listing that does not say which (one table); guessed from its chains otherwise. */
  table?: TableName;
  family?: Family;
  /** Name tables to turn names (ports, users, hosts) back into numbers. */
  names?: NameTables;
}

/** The columns a listing's header line shows. */
interface Columns {
  num: boolean;
  counters: boolean;
  via: boolean;
  /** Offset of `prot` in the header: a token that starts before it is the target. */
  prot: number;
}

interface RuleLine {
  line: number;
  text: string;
}

interface ChainBlock {
  name: string;
  line: number;
  policy?: string;
  counters?: Counters;
  /** Whether a counter of the chain or its rules was shown rounded (`123K`). */
  rounded?: boolean;
  cols?: Columns;
  rules: RuleLine[];
}

interface Section {
  table?: TableName;
  marker: boolean;
  chains: ChainBlock[];
}

const CHAIN_RE = /^\s*Chain (\S+) \((?:policy (ACCEPT|DROP)(?: (\S+) packets, (\S+) bytes)?|(\d+) references?)\)\s*$/;
const HEADER_RE = /^\s*(?:num\s+)?(?:pkts\s+bytes\s+)?target\s+prot\s+opt\s+(?:in\s+out\s+)?source\s+destination\s*$/;
const TABLE_RE = [
  /^\s*\*(raw|mangle|nat|filter|security)\s*$/,
  /^\s*#+\s*Table:\s*(raw|mangle|nat|filter|security)\b/i,
  /\b(?:iptables|ip6tables)\S*\s.*(?:-t\s*|--table[= ])(raw|mangle|nat|filter|security)\b/,
  /\b(raw|mangle|nat|filter|security) table\b/i,
];

/** A counter as a listing prints it: exact digits, or rounded with K, M, G, T. */
function count(text: string): { value: number; rounded: boolean } | undefined {
  const m = /^(\d+)([KMGT]?)$/.exec(text);
  if (!m) return undefined;
  const mult = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2]]!;
  return { value: Number(m[1]) * mult, rounded: m[2] !== '' };
}

/** Split a listing text into sections (one table each) of chain blocks. */
function scan(text: string): Section[] {
  const sections: Section[] = [];
  let pending: TableName | undefined;
  let sec: Section | undefined;
  let block: ChainBlock | undefined;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n].replace(/\r$/, '');
    const cm = CHAIN_RE.exec(raw);
    if (cm) {
      if (!sec || pending || sec.chains.some((c) => c.name === cm[1])) {
        sec = { table: pending, marker: !!pending, chains: [] };
        sections.push(sec);
        pending = undefined;
      }
      const pk = cm[3] !== undefined ? count(cm[3]) : undefined, by = cm[4] !== undefined ? count(cm[4]) : undefined;
      block = { name: cm[1], line: n + 1, policy: cm[2], rules: [], counters: pk && by ? { packets: pk.value, bytes: by.value } : undefined,
        rounded: !!(pk?.rounded || by?.rounded) };
      sec.chains.push(block);
      continue;
    }
    if (block && !block.cols && HEADER_RE.test(raw)) {
      const indent = raw.length - raw.trimStart().length;
      const body = raw.slice(indent);
      block.cols = { num: /^num\b/.test(body), counters: /\bpkts\b/.test(body), via: /\bin\s+out\b/.test(body), prot: raw.indexOf(' prot ') + 1 };
      continue;
    }
    if (block?.cols && raw.trim() !== '' && isRuleLine(raw, block.cols)) {
      block.rules.push({ line: n + 1, text: raw });
      continue;
    }
    block = undefined;
    for (const re of TABLE_RE) {
      const m = re.exec(raw);
      if (m) {
        pending = m[1].toLowerCase() as TableName;
        break;
      }
    }
  }
  return sections;
}

/** Whether a line has the shape of a rule under this header (counters and columns in place). */
function isRuleLine(raw: string, cols: Columns): boolean {
  const w = raw.trim().split(/\s+/);
  let k = 0;
  if (cols.num && !/^\d+$/.test(w[k++] ?? '')) return false;
  if (cols.counters && !(count(w[k++] ?? '') && count(w[k++] ?? ''))) return false;
  return w.length - k >= 3;
}

/** Which table a section of chains is, from the built-in chains it lists. */
function inferTable(chains: ChainBlock[]): TableName | undefined {
  const b = new Set(chains.filter((c) => c.policy).map((c) => c.name));
  if (b.has('FORWARD')) return b.has('PREROUTING') || b.has('POSTROUTING') ? 'mangle' : 'filter';
  if (b.has('POSTROUTING') || (b.has('PREROUTING') && b.has('INPUT'))) return 'nat';
  if (b.has('PREROUTING') && b.has('OUTPUT')) return 'raw';
  return undefined;
}

/** Parse an `iptables -L` listing into a ruleset; what the listing cannot say comes back as warnings. */
export function parseListing(text: string, opts: ListingOptions = {}): ParseResult {
  if (!opts.table) opts = { ...opts, table: undefined };
  const sections = scan(text);
  const family: Family = opts.family ?? guessListingFamily(sections);
  const b = new RulesetBuilder(family);
  const issues: Issue[] = [];
  if (!sections.length) {
    issues.push({ severity: 'error', code: 'listing-empty', message: 'no `Chain NAME (policy …)` header found: this is not an iptables -L listing', line: 1, column: 1 });
    return { ruleset: b.build([]), issues };
  }
  const done = new Set<TableName>();
  const tableOf = new Map<Section, TableName>();
  for (const sec of sections) {
    let table = sec.table ?? (sections.length === 1 ? opts.table : undefined) ?? inferTable(sec.chains) ?? sameChainsAs(sec, sections, tableOf) ?? opts.table;
    if (!table) {
      table = 'filter';
      issues.push({ severity: 'warning', code: 'listing-table-assumed', line: sec.chains[0].line, column: 1,
        message: `the listing does not say its table and its chains do not show it: read as the filter table (pass the table to choose another)` });
    }
    // a table listed again (often one chain of it: `iptables -L CHAIN -t nat`) is a newer view
    // of the chains it shows; the others stay as listed before
    if (done.has(table))
      issues.push({ severity: 'warning', code: 'listing-table-twice', line: sec.chains[0].line, column: 1,
        message: `table \`${table}' is listed again: the chains listed here replace the same chains listed before` });
    else b.reset(table);
    done.add(table);
    tableOf.set(sec, table);
    importSection(b, table, sec, family, opts.names, issues);
  }
  const ruleset = b.build(issues);
  return { ruleset, issues };
}

/** A listing of user chains only (`iptables -L DOCKER`) belongs with an earlier listing of the same chains. */
function sameChainsAs(sec: Section, sections: Section[], tableOf: Map<Section, TableName>): TableName | undefined {
  for (let k = sections.indexOf(sec) - 1; k >= 0; k--)
    if (sections[k].chains.some((c) => sec.chains.some((d) => d.name === c.name))) return tableOf.get(sections[k]);
  return undefined;
}

/** IPv6 when any word of a rule holds an IPv6 address (`2001:db8::/32`, `to:[2001:db8::1]:80`); MAC addresses are not. */
function guessListingFamily(sections: Section[]): Family {
  for (const s of sections)
    for (const c of s.chains)
      for (const r of c.rules)
        for (const word of r.text.split(/[\s,\[\]!]+/)) {
          const w = word.replace(/^to:/, '').replace(/\/.*$/, '');
          if (!w.includes(':') || /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(w)) continue;
          if (w.split('-').some((x) => parseIP(x, 'ipv6'))) return 'ipv6';
        }
  return 'ipv4';
}

function importSection(b: RulesetBuilder, table: TableName, sec: Section, family: Family, names: NameTables | undefined, issues: Issue[]): void {
  const warn = (line: number, code: string, message: string, column = 1) => issues.push({ severity: 'warning', code, message, line, column });
  const first = sec.chains[0];
  const cols = sec.chains.find((c) => c.cols)?.cols;
  if (cols && !cols.via)
    warn(first.line, 'listing-no-interfaces', `listing made without -v: it shows no interfaces and no counters; rules are read as having none`);
  // chains first, so that jumps between them resolve
  for (const c of sec.chains) {
    if (c.policy) {
      if (!isBuiltin(table, c.name)) {
        issues.push({ severity: 'error', code: 'listing-bad-chain', line: c.line, column: 1, message: `\`${c.name}' has a policy but is not a built-in chain of table \`${table}'` });
        continue;
      }
      b.apply(table, { op: 'policy', chain: c.name, policy: c.policy as 'ACCEPT' | 'DROP', counters: c.counters }, c.line, 1, issues);
    } else if (!isBuiltin(table, c.name) && !b.table(table).chains.has(c.name)) {
      b.apply(table, { op: 'new-chain', chain: c.name }, c.line, 1, issues);
      continue;
    }
    if (b.table(table).chains.has(c.name)) b.apply(table, { op: 'flush', chain: c.name }, c.line, 1, issues);
  }
  const listed = new Set(sec.chains.map((c) => c.name));
  for (const c of sec.chains) for (const r of c.rules) importRule(b, table, c, r, family, names, issues, listed);
  if (sec.chains.some((c) => c.rounded)) warn(first.line, 'listing-rounded-counters', `counters are shown rounded (K, M, G): imported as rounded values (list with -x for exact ones)`);
}

/** The words of a line with their offsets. */
function words(text: string): { text: string; at: number; end: number }[] {
  const out: { text: string; at: number; end: number }[] = [];
  const re = /\S+/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ text: m[0], at: m.index, end: m.index + m[0].length });
  return out;
}

const VERDICTS = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']);

/** One rule line back into `-A CHAIN …` arguments, then through parseCommand and the builder. */
function importRule(b: RulesetBuilder, table: TableName, c: ChainBlock, r: RuleLine, family: Family, names: NameTables | undefined,
  issues: Issue[], listed: Set<string>): void {
  const cols = c.cols!;
  const warn = (code: string, message: string, column = 1) => issues.push({ severity: 'warning', code, message, line: r.line, column });
  const w = words(r.text);
  let k = cols.num ? 1 : 0;
  let counters: Counters | undefined;
  if (cols.counters) {
    const p = count(w[k++].text)!, by = count(w[k++].text)!;
    counters = { packets: p.value, bytes: by.value };
    if (p.rounded || by.rounded) c.rounded = true;
  }
  // the target column may be empty; the opt column (`--`, `-f`, `!f`) follows the protocol,
  // except in old ip6tables listings, which leave it blank: there the column offsets decide
  const isOpt = (x?: { text: string }) => !!x && /^[-!][-f]$/.test(x.text);
  let target = '';
  if (!isOpt(w[k + 1]) && (isOpt(w[k + 2]) || w[k].at < cols.prot - 1)) target = w[k++].text;
  const protoWord = w[k++];
  const opt = isOpt(w[k]) ? w[k++].text : '--';
  if (w.length - k < (cols.via ? 4 : 2)) {
    issues.push({ severity: 'error', code: 'listing-bad-line', line: r.line, column: 1, message: 'rule line is missing columns (expected protocol, source and destination)' });
    return;
  }
  const args: string[] = ['-A', c.name];
  const neg = (text: string): [boolean, string] => (text.startsWith('!') ? [true, text.slice(1)] : [false, text]);
  if (cols.via)
    for (const flag of ['-i', '-o']) {
      const [inv, v] = neg(w[k++].text);
      if (v !== '*' && v !== 'any') args.push(...(inv ? ['!'] : []), flag, v);
    }
  for (const flag of ['-s', '-d']) {
    const word = w[k++];
    const [inv, v] = neg(word.text);
    if (v === 'anywhere' || v === '0.0.0.0/0' || v === '::/0') continue;
    let addr = unlistHost(v, family, names);
    if (addr === undefined) {
      addr = assumedName(v, family);
      if (addr === undefined) {
        warn('listing-unresolved', `${flag === '-s' ? 'source' : 'destination'} \`${v}' is a name podtables cannot turn back into an address (pass a hosts table, or list with -n): rule skipped`, word.at + 1);
        return;
      }
      warn('listing-assumed-name', `\`${v}' read as ${addr}, the address it has on common systems`, word.at + 1);
    }
    args.push(...(inv ? ['!'] : []), flag, addr);
  }
  const [pinv, proto] = neg(protoWord.text);
  if (proto !== 'all' && proto !== '0') args.push(...(pinv ? ['!'] : []), '-p', proto);
  if (opt[1] === 'f') args.push(...(opt[0] === '!' ? ['!'] : []), '-f');
  // the option column is what follows the destination column
  const dstEnd = w[k - 1].end;
  const optText = r.text.slice(dstEnd);
  const u = unlistOptions(optText, { family, protocol: proto, names, target });
  const targetArgs: string[] = [];
  const verbatim: MatchInstance[] = [];
  const column = (text: string) => r.text.indexOf(text, dstEnd) + 1 || 1;
  const keep = (text: string, why: string) => {
    warn('listing-unknown-option', `option text \`${text}' ${why}: kept verbatim as an unknown match`, column(text));
    const words = text.split(/\s+/);
    const at = words[0] === '!' && words.length > 1 ? 1 : 0;
    verbatim.push({ kind: 'unknown', name: words[at], tokens: [...words.slice(0, at), ...words.slice(at + 1)] });
  };
  for (const p of u.pieces) {
    if (p.problem && !p.target && p.args[0] === '-m') {
      // keep the name as written: iptables-restore resolves it on a host that knows it
      warn('listing-unresolved', `${p.problem} (pass a names table, or list with -n): kept as \`${p.args.join(' ')}', which podtables does not evaluate`, column(p.text));
      verbatim.push({ kind: 'unknown', name: p.args[1], tokens: p.args.slice(2) });
    } else if (p.problem) keep(p.text, `cannot be read back (${p.problem})`);
    else if (p.target) {
      targetArgs.push(...p.args);
      if (p.rename) target = p.rename;
    }
    else args.push(...p.args);
  }
  if (u.rest) keep(u.rest, 'is not understood');
  if (target) args.push(u.goto ? '-g' : '-j', target, ...targetArgs);
  const p = parseCommand(args.map((text, n) => ({ text, column: n + 1 })), { family, table, line: r.line });
  const errors = p.issues.filter((i) => i.severity === 'error');
  const cmd = p.command;
  if (errors.length || !cmd || cmd.op !== 'append') {
    issues.push({ severity: 'error', code: 'listing-bad-rule', line: r.line, column: 1,
      message: `rule cannot be read back: ${errors.map((e) => e.message).join('; ') || 'no rule'} (read as \`${args.join(' ')}')` });
    return;
  }
  for (const rule of cmd.rules) {
    rule.matches.push(...verbatim);
    if (counters) rule.counters = counters;
    rule.line = r.line;
    const t = rule.target;
    if ((t?.kind === 'jump' || t?.kind === 'goto') && !listed.has(t.chain) && !b.table(table).chains.has(t.chain) && !VERDICTS.has(t.chain)) {
      warn('listing-chain-not-listed', `chain \`${t.chain}' is not in the listing: created empty`);
      b.apply(table, { op: 'new-chain', chain: t.chain }, r.line, 1, []);
      listed.add(t.chain);
    }
  }
  b.apply(table, cmd, r.line, 1, issues);
}

/** Names every resolver knows; used, with a warning, when the caller gave no hosts table. */
function assumedName(name: string, family: Family): string | undefined {
  const slash = name.indexOf('/');
  const host = slash < 0 ? name : name.slice(0, slash);
  const mask = slash < 0 ? '' : name.slice(slash);
  const v4: Record<string, string> = { localhost: '127.0.0.1', loopback: '127.0.0.0', 'link-local': '169.254.0.0', default: '0.0.0.0' };
  const v6: Record<string, string> = { localhost: '::1', 'ip6-localhost': '::1', 'ip6-loopback': '::1' };
  const a = (family === 'ipv4' ? v4 : v6)[host];
  return a === undefined ? undefined : a + mask;
}
