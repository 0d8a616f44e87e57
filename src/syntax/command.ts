/**
 * One iptables command line (the argv after `iptables`, or a line of a restore file) turned into a
 * Command. Options go to extensions through the registry, as iptables' command_default does:
 * the most recently loaded extension that knows an option takes it; an unknown option with `-p`
 * set loads the protocol's match implicitly.
 */
import { cidr4, parseCidr, parseCidr4Numbers, type Cidr, type Cidr4Numbers, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { protocolMatchName, protocolName, protocolNumber } from '../model/protocols';
import type { Counters, MatchInstance, Negatable, Rule, TableName, Target } from '../model/ruleset';
import { getMatch, getTarget } from '../extensions/index';
import { ExtensionError, type Extension, type GivenOption, type NameTables, type OptionSpec, type ParseContext } from '../extensions/types';
import type { Token, Words } from './tokenize';

/** What a command line asks for. */
export type Command =
  | { op: 'append'; chain: string; rules: Rule[] }
  | { op: 'insert'; chain: string; position: number; rules: Rule[] }
  | { op: 'delete'; chain: string; rules?: Rule[]; position?: number }
  | { op: 'replace'; chain: string; position: number; rules: Rule[] }
  | { op: 'new-chain'; chain: string }
  | { op: 'delete-chain'; chain?: string }
  | { op: 'flush'; chain?: string }
  | { op: 'zero'; chain?: string }
  | { op: 'policy'; chain: string; policy: 'ACCEPT' | 'DROP'; counters?: Counters }
  | { op: 'rename-chain'; chain: string; to: string }
  /** `-L`/`-S` and friends: nothing to change. */
  | { op: 'list'; chain?: string };

/** The result of parsing a command line. */
export interface ParsedCommand {
  command?: Command;
  /** `-t` given on the line (commands form). */
  table?: TableName;
  /** Set when the line is `-4`/`-6` for the other family and must be ignored. */
  otherFamily?: boolean;
  issues: Issue[];
}

export interface CommandContext {
  family: Family;
  table: TableName;
  line: number;
  /** Names the host resolves (`--uid-owner daemon`); none when absent. */
  names?: NameTables;
  /**
   * Addresses already read from the same input, by their text, to be shared rather than read
   * again: dumps repeat them (kube-proxy's pod CIDR on every Service). The restore reader keeps
   * one per file, so that nothing of a file outlives its reading.
   */
  addresses?: RecentAddresses;
}

/**
 * The last few addresses read. A dump repeats a few addresses (a pod CIDR, a Service's address
 * on its two rules in a row) among many it has once, and equal ones are shared. IPv4 addresses
 * are compared as numbers once read (reading a dotted quad costs less than comparing texts, and a
 * map would hash every text), IPv6 ones by their text.
 */
export class RecentAddresses {
  private addrs = new Float64Array(8).fill(-1);
  private masks = new Float64Array(8);
  private texts: string[] = ['', '', '', '', '', '', '', ''];
  private cidrs: (Cidr | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined];
  private next = 0;

  /** The IPv4 address of these numbers read lately, if any. */
  find4(addr: number, mask: number): Cidr | undefined {
    const addrs = this.addrs;
    for (let k = 0; k < 8; k++) if (addrs[k] === addr && this.masks[k] === mask) return this.cidrs[k];
    return undefined;
  }

  /** The address read from `text` lately, if any. */
  get(text: string): Cidr | undefined {
    const texts = this.texts;
    for (let k = 0; k < 8; k++) if (texts[k] === text) return this.cidrs[k];
    return undefined;
  }

  /** Remember an address, by its text or (IPv4) its numbers, in place of the oldest. */
  set(text: string, c: Cidr, addr = -1, mask = 0): void {
    this.texts[this.next] = text;
    this.addrs[this.next] = addr;
    this.masks[this.next] = mask;
    this.cidrs[this.next] = c;
    this.next = (this.next + 1) & 7;
  }
}

/** A failure at a token, turned into an Issue by the caller. */
class CmdError extends Error {
  constructor(message: string, public token: number, public code = 'bad-command') {
    super(message);
  }
}

const COMMANDS: Record<string, Command['op']> = {
  '-A': 'append', '--append': 'append', '-I': 'insert', '--insert': 'insert', '-D': 'delete', '--delete': 'delete',
  '-R': 'replace', '--replace': 'replace', '-N': 'new-chain', '--new-chain': 'new-chain', '-X': 'delete-chain',
  '--delete-chain': 'delete-chain', '-F': 'flush', '--flush': 'flush', '-Z': 'zero', '--zero': 'zero',
  '-P': 'policy', '--policy': 'policy', '-E': 'rename-chain', '--rename-chain': 'rename-chain',
  '-L': 'list', '--list': 'list', '-S': 'list', '--list-rules': 'list',
};
/** The rule and program flags of iptables itself, by every spelling (before any extension's). */
const enum Flag { Command, Table, Ipv4, Ipv6, Wait, Quiet, Protocol, Source, Destination, InIface, OutIface, Fragment, Counters, Match, Jump, Goto }
const FLAGS = new Map<string, Flag>([
  ...Object.keys(COMMANDS).map((k) => [k, Flag.Command] as const),
  ['-t', Flag.Table], ['--table', Flag.Table], ['-4', Flag.Ipv4], ['--ipv4', Flag.Ipv4], ['-6', Flag.Ipv6], ['--ipv6', Flag.Ipv6],
  ['-w', Flag.Wait], ['--wait', Flag.Wait], ['-W', Flag.Wait], ['--wait-interval', Flag.Wait],
  ['-n', Flag.Quiet], ['--numeric', Flag.Quiet], ['-v', Flag.Quiet], ['--verbose', Flag.Quiet], ['-x', Flag.Quiet], ['--exact', Flag.Quiet], ['--line-numbers', Flag.Quiet],
  ['-p', Flag.Protocol], ['--protocol', Flag.Protocol], ['-s', Flag.Source], ['--source', Flag.Source], ['--src', Flag.Source],
  ['-d', Flag.Destination], ['--destination', Flag.Destination], ['--dst', Flag.Destination],
  ['-i', Flag.InIface], ['--in-interface', Flag.InIface], ['-o', Flag.OutIface], ['--out-interface', Flag.OutIface],
  ['-f', Flag.Fragment], ['--fragment', Flag.Fragment], ['-c', Flag.Counters], ['--set-counters', Flag.Counters],
  ['-m', Flag.Match], ['--match', Flag.Match], ['-j', Flag.Jump], ['--jump', Flag.Jump], ['-g', Flag.Goto], ['--goto', Flag.Goto],
]);
const COMMAND_OPS = new Map(Object.entries(COMMANDS));

/** Whether `word` is one of iptables' own flags (`-A`, `--jump`, …) rather than an extension's option. */
export const isFlag = (word: string): boolean => FLAGS.has(word);
/** The two-character flags by their letter, so that the common `-A`, `-m`, `-j` need no hashing. */
const SHORT_FLAGS: (Flag | undefined)[] = Array.from({ length: 128 }, (_, c) => FLAGS.get(`-${String.fromCharCode(c)}`));
const TABLES = new Set(['raw', 'mangle', 'nat', 'filter', 'security']);
const VERDICTS = { ACCEPT: 'ACCEPT', DROP: 'DROP', RETURN: 'RETURN', QUEUE: 'QUEUE' } as const;
const IFNAMSIZ = 16;

interface Loaded {
  ext: Extension;
  /** The extension's options by `--name` (see optionTable). */
  options: Map<string, OptionSpec>;
  name: string;
  opts: GivenOption[];
  /** First token of `-m NAME` / `-j NAME`. */
  token: number;
  kind: 'match' | 'target';
  /** A match's place in the rule's match list. */
  index?: number;
}

/** An option's argument, or a CmdError naming the option that lacks it. */
function need(argv: string[], i: number, what: string): string {
  if (i >= argv.length) throw new CmdError(`option "${argv[i - 1]}" requires an argument${what ? ` (${what})` : ''}`, i - 1);
  return argv[i];
}

function noInvert(argv: string[], i: number, invertAt: number): never {
  throw new CmdError(`cannot have ! before ${argv[i]}`, invertAt);
}

function ruleNumber(extra: readonly string[]): number {
  const n = Number(extra[0]);
  if (!(n >= 1)) throw new CmdError('invalid rule number', 0);
  return n;
}

/** Parse one command's tokens. */
export function parseCommand(tokens: Token[], ctx: CommandContext): ParsedCommand {
  const words: Words = { texts: tokens.map((t) => t.text), columns: tokens.map((t) => t.column) };
  if (tokens.some((t) => t.quoted)) words.quoted = tokens.map((t) => !!t.quoted);
  return parseWords(words, ctx);
}

/** Parse one command from a line's words as splitWords gives them (the restore reader's path). */
export function parseWords(words: Words, ctx: CommandContext): ParsedCommand {
  const issues: Issue[] = [];
  // the shared lists serve one line at a time; a line read while another is (an extension that
  // parsed a command of its own) gets lists of its own
  const lists = busy ? { matches: new Scratch<MatchInstance>(), loaded: new Scratch<Loaded>() } : LISTS;
  busy = true;
  lists.matches.length = lists.loaded.length = 0;
  try {
    return parseInner(words, ctx, issues, lists.matches, lists.loaded);
  } catch (e) {
    if (e instanceof CmdError) {
      const column = words.columns[Math.min(e.token, words.columns.length - 1)];
      issues.push({ severity: 'error', code: e.code, message: e.message, line: ctx.line, column: column ?? 1 });
      return { issues };
    }
    throw e;
  } finally {
    // nothing of the line may outlive it in the shared lists: its words are cut from the text it
    // came from, and would keep a whole file alive
    const { matches, loaded } = lists;
    for (let k = 0; k < matches.length; k++) matches.items[k] = UNSET;
    for (let k = 0; k < loaded.length; k++) loaded.items[k].opts = NO_OPTS;
    if (lists === LISTS) busy = false;
  }
}

/**
 * A list a line fills as it is read, kept from line to line: a list grown from empty by push
 * reserves room for 16 entries, and a dump has a hundred thousand rules. Emptying it only resets
 * the count (emptying an array would give up its storage).
 */
class Scratch<T> {
  items: T[] = [];
  length = 0;

  push(x: T): void {
    this.items[this.length++] = x;
  }

  /** The filled part as a list of its own, exactly as long. */
  copy(): T[] {
    return this.items.slice(0, this.length);
  }
}

const LISTS = { matches: new Scratch<MatchInstance>(), loaded: new Scratch<Loaded>() };
/** Options of an extension before the first is given: shared, never added to (the first makes a list). */
const NO_OPTS: GivenOption[] = [];
/** What a used entry of the match list holds once its line is done. */
const UNSET: MatchInstance = { kind: 'unknown', name: '', tokens: [] };

/**
 * Record an extension the line loads (the registry's own spelling of its name: one shared string
 * rather than one per rule). The records of earlier lines are reused: only their option lists
 * leave the parser.
 */
function load(loaded: Scratch<Loaded>, ext: Extension, token: number, kind: Loaded['kind'], index: number | undefined): Loaded {
  let l = loaded.items[loaded.length];
  if (l) {
    l.ext = ext;
    l.options = optionTable(ext);
    l.name = ext.name;
    l.opts = NO_OPTS;
    l.token = token;
    l.kind = kind;
    l.index = index;
  } else l = { ext, options: optionTable(ext), name: ext.name, opts: NO_OPTS, token, kind, index };
  loaded.push(l);
  return l;
}
let busy = false;

/** An address of `-s`/`-d` as given: its text, whether `!` preceded it, its token. */
interface AddrArg {
  text: string;
  invert: boolean;
  token: number;
}
const NO_ADDRS: readonly AddrArg[] = [];
const NO_EXTRA: readonly string[] = [];

function parseInner(words: Words, ctx: CommandContext, issues: Issue[], matches: Scratch<MatchInstance>, loaded: Scratch<Loaded>): ParsedCommand {
  const argv = words.texts;
  let table: TableName | undefined;
  let op: Command['op'] | undefined;
  let chain: string | undefined;
  let extra = NO_EXTRA;
  let otherFamily = false;
  // built from an empty object, which has room for four fields inside it (a literal of two has
  // room for two, and a third goes to a separate block): most rules have at most four
  const rule = {} as Rule;
  rule.matches = [];
  rule.line = ctx.line;
  // most rules have one address or none: the lists are made when the first one comes
  let sources: AddrArg[] | undefined;
  let dests: AddrArg[] | undefined;
  let target: Loaded | undefined;
  let targetPlain: Target | undefined;
  let targetAt = -1;
  let invert = false;
  let invertAt = -1;

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    // every flag and option starts with a dash: anything else is `!` or out of place
    if (a.charCodeAt(0) !== 45) {
      if (a !== '!') throw new CmdError(`Bad argument \`${a}'`, i, 'bad-argument');
      if (invert) throw new CmdError('multiple consecutive ! not allowed', i);
      invert = true;
      invertAt = i;
      continue;
    }
    const c1 = a.length === 2 ? a.charCodeAt(1) : 128;
    const flag = c1 < 128 ? SHORT_FLAGS[c1] : FLAGS.get(a);
    if (flag === Flag.Command) {
      if (invert) noInvert(argv, i, invertAt);
      if (op) throw new CmdError(`cannot use ${a} with -${opLetter(op)}`, i, 'bad-command');
      op = COMMAND_OPS.get(a);
      if (op === 'list' || op === 'delete-chain' || op === 'flush' || op === 'zero') {
        if (i + 1 < argv.length && !argv[i + 1].startsWith('-')) chain = argv[++i];
      } else {
        chain = need(argv, i + 1, 'chain');
        i++;
        if (op === 'policy' || op === 'rename-chain') extra = [need(argv, i + 1, op === 'policy' ? 'policy' : 'new name')], i++;
        if ((op === 'insert' || op === 'delete' || op === 'replace') && i + 1 < argv.length && /^\d+$/.test(argv[i + 1]))
          extra = [argv[++i]];
      }
      continue;
    }
    switch (flag) {
      case Flag.Table: {
        if (invert) noInvert(argv, i, invertAt);
        const t = need(argv, i + 1, 'table');
        if (!TABLES.has(t)) throw new CmdError(`can't initialize iptables table \`${t}': Table does not exist`, i + 1, 'unknown-table');
        table = t as TableName;
        i++;
        continue;
      }
      case Flag.Ipv4:
        if (ctx.family !== 'ipv4') otherFamily = true;
        continue;
      case Flag.Ipv6:
        if (ctx.family !== 'ipv6') otherFamily = true;
        continue;
      case Flag.Wait:
        if (i + 1 < argv.length && /^\d+(\.\d+)?$/.test(argv[i + 1])) i++;
        continue;
      case Flag.Quiet:
        continue;
      case Flag.Protocol: {
        const v = need(argv, i + 1, 'protocol');
        const n = protocolNumber(v);
        if (n === undefined) throw new CmdError(`unknown protocol "${v}" specified`, i + 1, 'unknown-protocol');
        if (rule.protocol) throw new CmdError('multiple -p flags not allowed', i);
        rule.protocol = { value: n === 0 ? 'all' : protocolName(n), invert };
        invert = false;
        if (n === 0 && rule.protocol.invert) throw new CmdError('rule would never match protocol', i + 1);
        i++;
        continue;
      }
      case Flag.Source: case Flag.Destination: {
        const v = need(argv, i + 1, 'address');
        const isSource = flag === Flag.Source;
        if (isSource ? sources : dests) throw new CmdError(`multiple ${isSource ? '-s' : '-d'} flags not allowed`, i);
        const list = v.indexOf(',') < 0 ? [{ text: v, invert, token: i + 1 }] : v.split(',').map((part) => ({ text: part, invert, token: i + 1 }));
        if (isSource) sources = list;
        else dests = list;
        invert = false;
        i++;
        continue;
      }
      case Flag.InIface: case Flag.OutIface: {
        const v = need(argv, i + 1, 'interface');
        if (v === '') throw new CmdError('Empty interface is likely to be undesired', i + 1, 'bad-interface');
        if (v.length >= IFNAMSIZ) throw new CmdError(`interface name \`${v}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`, i + 1, 'bad-interface');
        const which = flag === Flag.InIface ? 'inInterface' : 'outInterface';
        if (rule[which]) throw new CmdError(`multiple ${which === 'inInterface' ? '-i' : '-o'} flags not allowed`, i);
        rule[which] = { value: v, invert };
        invert = false;
        i++;
        continue;
      }
      case Flag.Fragment:
        if (ctx.family === 'ipv6') throw new CmdError('unknown option "-f"', i, 'unknown-option');
        rule.fragment = { invert };
        invert = false;
        continue;
      case Flag.Counters: {
        if (invert) noInvert(argv, i, invertAt);
        const p = need(argv, i + 1, 'packets'), b = need(argv, i + 2, 'bytes');
        if (!/^\d+$/.test(p) || !/^\d+$/.test(b)) throw new CmdError('-c packet counter not numeric', i + 1);
        rule.counters = { packets: Number(p), bytes: Number(b) };
        i += 2;
        continue;
      }
      case Flag.Match: {
        if (invert) noInvert(argv, i, invertAt);
        const name = need(argv, i + 1, 'match');
        // iptables looks for libxt_NAME.so; an empty name loads nothing
        if (name === '') throw new CmdError("Couldn't load match `':No such file or directory", i + 1, 'unknown-match');
        loadMatch(name, i, matches, loaded);
        i++;
        continue;
      }
      case Flag.Jump: case Flag.Goto: {
        if (invert) noInvert(argv, i, invertAt);
        const name = need(argv, i + 1, 'target');
        if (target || targetPlain) throw new CmdError('multiple -j flags not allowed', i);
        const isGoto = flag === Flag.Goto;
        targetAt = i;
        if (name === 'ACCEPT' || name === 'DROP' || name === 'RETURN' || name === 'QUEUE') {
          if (isGoto) throw new CmdError(`goto '${name}' is not a chain`, i + 1, 'bad-target');
          targetPlain = { kind: 'standard', verdict: VERDICTS[name] };
        } else {
          const ext = isGoto ? undefined : getTarget(name);
          if (ext) {
            // the registry's own spelling: one shared string rather than one per rule
            target = load(loaded, ext, i, 'target', undefined);
          } else if (isGoto || !looksLikeTargetExtension(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) {
            targetPlain = { kind: isGoto ? 'goto' : 'jump', chain: name };
          } else {
            targetPlain = { kind: 'unknown', name, tokens: [] };
          }
        }
        i++;
        continue;
      }
    }
    if (a.charCodeAt(1) === 45) {
      // `--name` or `--name=value`; tables are looked up by the option word as written
      const eq = a.indexOf('=', 2);
      const key = eq < 0 ? a : a.slice(0, eq);
      const inline = eq < 0 ? undefined : a.slice(eq + 1);
      // iptables' command_default offers an option to the target first, then to the loaded
      // matches, then loads the protocol's match; verbatim extensions take what nobody owns
      const afterUnknownTarget = targetPlain?.kind === 'unknown' && i > targetAt;
      let owner = afterUnknownTarget ? undefined : findOwner(loaded, key);
      const pm = !owner && rule.protocol && !rule.protocol.invert ? protoMatch(rule, ctx) : undefined;
      const pmLoaded = pm !== undefined && hasMatch(matches, pm);
      if (!owner && !afterUnknownTarget && pm && !pmLoaded) {
        const ext = getMatch(pm);
        if (ext && optionTable(ext).has(key)) {
          loadMatch(pm, -1, matches, loaded);
          owner = findOwner(loaded, key);
        }
      }
      if (!owner) {
        let sink: { tokens: string[] } | undefined = afterUnknownTarget && targetPlain?.kind === 'unknown' ? targetPlain : undefined;
        for (let k = matches.length - 1; k >= 0 && !sink; k--) {
          const m = matches.items[k];
          if (m.kind === 'unknown') sink = m;
        }
        if (!sink && pm && !pmLoaded && !getMatch(pm)) {
          // `-p sctp --dport 1` loads libxt_sctp even though podtables does not model it
          loadMatch(pm, -1, matches, loaded);
          sink = matches.items[matches.length - 1] as { tokens: string[] };
        }
        if (sink) {
          const n = absorbOption(words, i, invert);
          sink.tokens.push(...n.tokens);
          invert = false;
          i = n.next - 1;
          continue;
        }
        throw new CmdError(`unknown option "${a}"`, i, 'unknown-option');
      }
      const l = owner;
      const spec = ownerSpec;
      const inv = invert;
      invert = false;
      if (inv && !spec.invert) throw new CmdError(`${l.name}: option "--${spec.name}" cannot be inverted.`, invertAt, 'bad-invert');
      // lists start as literals of their first item: a list grown from empty by push reserves
      // room for 16, and a dump has several such lists per rule
      let args: string[] | undefined = inline === undefined ? undefined : [inline];
      let count = args ? 1 : 0;
      let j = i + 1;
      let oldInvert = false;
      while (count < spec.args) {
        if (j >= argv.length) throw new CmdError(`${l.name}: option "--${spec.name}" requires an argument`, i, 'missing-argument');
        if (argv[j] === '!' && spec.invert && count === 0 && !oldInvert) {
          oldInvert = true;
          j++;
          continue;
        }
        if (args) args.push(argv[j++]);
        else args = [argv[j++]];
        count++;
      }
      if (oldInvert) {
        issues.push({ severity: 'warning', code: 'intrapositioned-negation', line: ctx.line, column: words.columns[i],
          message: `Using intrapositioned negation (\`--option ! this\`) is deprecated in favor of extrapositioned (\`! --option this\`).` });
      }
      const given: GivenOption = { name: spec.name, invert: inv || oldInvert, args: args ?? [], token: i };
      if (l.opts.length) l.opts.push(given);
      else l.opts = [given];
      i = j - 1;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) throw new CmdError(`unknown option "${a}"`, i, 'unknown-option');
    throw new CmdError(`Bad argument \`${a}'`, i, 'bad-argument');
  }
  if (invert) throw new CmdError('! at the end of the line has nothing to negate', invertAt);
  if (!op) throw new CmdError('no command specified', 0, 'no-command');
  if (otherFamily) return { otherFamily, table, issues };
  // iptables itself (not the kernel) refuses DROP in nat; a DROP policy there still loads
  if (targetPlain?.kind === 'standard' && targetPlain.verdict === 'DROP' && (table ?? ctx.table) === 'nat')
    throw new CmdError('The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.', targetAt + 1, 'drop-in-nat');

  // let each extension check its options, as the final_check step does
  const pctx: ParseContext = { family: ctx.family, table: table ?? ctx.table, protocol: rule.protocol, names: ctx.names };
  for (let k = 0; k < loaded.length; k++) {
    const l = loaded.items[k];
    try {
      const info = l.ext.parse(l.opts.length ? l.opts : [], pctx);
      if (l.kind === 'target') rule.target = { kind: 'extension', name: l.name, info };
      else (matches.items[l.index!] as { info: unknown }).info = info;
    } catch (e) {
      if (e instanceof ExtensionError) throw new CmdError(e.message, e.token ?? l.token, 'bad-option');
      throw e;
    }
    const tname = table ?? ctx.table;
    if (l.ext.tables && !l.ext.tables.includes(tname))
      throw new CmdError(`${l.name}: only valid in the ${l.ext.tables.join('/')} table${l.ext.tables.length > 1 ? 's' : ''}, not in ${tname}`, Math.max(l.token, 0), 'wrong-table');
    if (l.ext.protocol && (!rule.protocol || rule.protocol.invert || rule.protocol.value !== l.ext.protocol))
      throw new CmdError(`${l.name} ${l.kind}: only valid for protocol ${l.ext.protocol} (the rule needs -p ${l.ext.protocol})`, Math.max(l.token, 0), 'wrong-protocol');
    if (l.ext.family && l.ext.family !== ctx.family)
      throw new CmdError(`${l.name}: not available for ${ctx.family === 'ipv4' ? 'IPv4 (use ip6tables)' : 'IPv6 (use iptables)'}`, Math.max(l.token, 0), 'wrong-family');
  }
  if (targetPlain) rule.target = targetPlain;
  // the rule keeps a list of exactly its matches
  if (matches.length) rule.matches = matches.copy();

  const c = chain as string;
  let command: Command;
  switch (op) {
    case 'append': command = { op, chain: c, rules: expandAddresses(rule, sources ?? NO_ADDRS, dests ?? NO_ADDRS, ctx.family, ctx.addresses) }; break;
    case 'insert': command = { op, chain: c, position: extra.length ? ruleNumber(extra) : 1, rules: expandAddresses(rule, sources ?? NO_ADDRS, dests ?? NO_ADDRS, ctx.family, ctx.addresses) }; break;
    case 'replace': command = { op, chain: c, position: ruleNumber(extra), rules: expandAddresses(rule, sources ?? NO_ADDRS, dests ?? NO_ADDRS, ctx.family, ctx.addresses) }; break;
    case 'delete': command = extra.length ? { op, chain: c, position: ruleNumber(extra) } : { op, chain: c, rules: expandAddresses(rule, sources ?? NO_ADDRS, dests ?? NO_ADDRS, ctx.family, ctx.addresses) }; break;
    case 'policy': {
      const p = extra[0];
      if (p !== 'ACCEPT' && p !== 'DROP') throw new CmdError(`Bad policy name \`${p}'`, 2, 'bad-policy');
      command = { op, chain: c, policy: p, counters: rule.counters };
      break;
    }
    case 'rename-chain': command = { op, chain: c, to: extra[0] }; break;
    case 'new-chain': command = { op, chain: c }; break;
    default: command = { op, chain } as Command;
  }
  if (op === 'new-chain' || op === 'rename-chain') checkChainName(op === 'new-chain' ? c : extra[0], argv.indexOf(op === 'new-chain' ? c : extra[0]), op === 'new-chain');
  return { command, table, issues };
}

function opLetter(op: Command['op']): string {
  return Object.entries(COMMANDS).find(([, v]) => v === op)?.[0].slice(1) ?? op;
}

/** Targets iptables would try to load as an extension rather than as a chain name. */
export function looksLikeTargetExtension(name: string): boolean {
  return KNOWN_TARGET_NAMES.has(name);
}
/** Target extensions iptables ships that podtables may not model; kept verbatim when met. */
const KNOWN_TARGET_NAMES = new Set([
  'AUDIT', 'CHECKSUM', 'CLASSIFY', 'CLUSTERIP', 'CONNMARK', 'CONNSECMARK', 'CT', 'DNAT', 'DNPT', 'DSCP', 'ECN',
  'HL', 'HMARK', 'IDLETIMER', 'LED', 'LOG', 'MARK', 'MASQUERADE', 'NETMAP', 'NFLOG', 'NFQUEUE', 'NOTRACK',
  'RATEEST', 'REDIRECT', 'REJECT', 'SECMARK', 'SET', 'SNAT', 'SNPT', 'SYNPROXY', 'TCPMSS', 'TCPOPTSTRIP',
  'TEE', 'TOS', 'TPROXY', 'TRACE', 'TTL', 'ULOG',
]);

function loadMatch(name: string, token: number, matches: Scratch<MatchInstance>, loaded: Scratch<Loaded>): void {
  const ext = getMatch(name);
  const index = matches.length;
  if (ext) {
    // the registry's own spelling: one shared string rather than one per rule
    matches.push({ kind: 'match', name: ext.name, info: undefined });
    load(loaded, ext, token, 'match', index);
  } else {
    matches.push({ kind: 'unknown', name, tokens: [] });
  }
}

/**
 * Each extension's options by `--name` and `--alias`, built on first use: the first option of the
 * table that has the name either way, as a scan of the table finds it. Keyed by the word as
 * written, so that an option word is hashed once for the flag table and the option tables.
 */
const optionTables = new WeakMap<Extension, Map<string, OptionSpec>>();

export function optionTable(ext: Extension): Map<string, OptionSpec> {
  let t = optionTables.get(ext);
  if (!t) {
    t = new Map();
    for (const o of ext.options)
      for (const n of [o.name, ...(o.aliases ?? [])]) if (!t.has(`--${n}`)) t.set(`--${n}`, o);
    optionTables.set(ext, t);
  }
  return t;
}

/** The option of `ext` spelled exactly `name` (its name or an alias, without dashes), looked up in a table. */
export function exactOption(ext: Extension, name: string): OptionSpec | undefined {
  return optionTable(ext).get(`--${name}`);
}

/** The option findOwner found, beside the extension it returns (no pair object per option). */
let ownerSpec: OptionSpec = { name: '', args: 0 };

/**
 * The loaded extension that takes option word `key` (`--name`): exactly, else by unambiguous
 * abbreviation. The option itself is left in ownerSpec.
 */
function findOwner(list: Scratch<Loaded>, key: string): Loaded | undefined {
  const loaded = list.items;
  for (let k = list.length - 1; k >= 0; k--) {
    const spec = loaded[k].options.get(key);
    if (spec) {
      ownerSpec = spec;
      return loaded[k];
    }
  }
  const name = key.slice(2);
  // getopt_long takes an unambiguous abbreviation (`--to-port` for `--to-ports`), as Istio writes it
  const hits: { loaded: Loaded; spec: OptionSpec }[] = [];
  for (let k = list.length - 1; k >= 0; k--)
    for (const spec of loaded[k].ext.options)
      if ([spec.name, ...(spec.aliases ?? [])].some((n) => n.startsWith(name))) hits.push({ loaded: loaded[k], spec });
  if (hits.length !== 1) return undefined;
  ownerSpec = hits[0].spec;
  return hits[0].loaded;
}

function hasMatch(matches: Scratch<MatchInstance>, name: string): boolean {
  for (let k = 0; k < matches.length; k++) if (matches.items[k].name === name) return true;
  return false;
}

function protoMatch(rule: Rule, ctx: CommandContext): string | undefined {
  const n = rule.protocol ? protocolNumber(rule.protocol.value) : undefined;
  return n === undefined ? undefined : protocolMatchName(n, ctx.family);
}

/**
 * One option of an extension podtables does not model, kept verbatim: the option word and the
 * arguments after it, up to the next word that looks like an option (or `!` before one). A word
 * that was quoted in the input keeps the form xtables_save_string gives it, so that it prints back
 * as the kernel prints string options (`--log-prefix "a b"`).
 */
function absorbOption(words: Words, i: number, invert: boolean): { tokens: string[]; next: number } {
  const tokens: Token[] = words.texts.map((text, k) => (words.quoted?.[k] ? { text, column: words.columns[k], quoted: true } : { text, column: words.columns[k] }));
  const out: string[] = invert ? ['!', tokens[i].text] : [tokens[i].text];
  const isOption = (t: Token | undefined) => !!t && !t.quoted && /^-[-a-zA-Z]/.test(t.text);
  let j = i + 1;
  // intrapositioned negation (`--state ! NEW`), which old iptables-save wrote
  if (tokens[j]?.text === '!' && !tokens[j].quoted && tokens[j + 1] && !isOption(tokens[j + 1])) out.push(tokens[j++].text);
  for (; j < tokens.length; j++) {
    const t = tokens[j];
    if (isOption(t) || (t.text === '!' && !t.quoted)) break;
    out.push(t.quoted ? verbatimString(t.text) : t.text);
  }
  return { tokens: out, next: j };
}

/** A quoted word as xtables_save_string prints it: bare when only [-_0-9a-zA-Z], else quoted. */
function verbatimString(v: string): string {
  if (/^[-_0-9a-zA-Z]+$/.test(v)) return v;
  return `"${v.replace(/["\\']/g, (c) => '\\' + c)}"`;
}

function checkChainName(name: string, token: number, creating: boolean): void {
  if (name.length >= 29) throw new CmdError(`chain name \`${name}' too long (must be under 29 chars)`, token, 'bad-chain');
  if (name.startsWith('-') || name.startsWith('!')) throw new CmdError(`chain name must not start with \`${name[0]}'`, token, 'bad-chain');
  // -N looks the name up as a target, and the empty name is the standard target's (1.8.9, both
  // backends); -E to "" passes this check (legacy renames, nft fails in the kernel)
  if ((creating && name === '') || ['ACCEPT', 'DROP', 'RETURN', 'QUEUE'].includes(name) || getTarget(name))
    throw new CmdError(`chain name may not clash with target name`, token, 'bad-chain');
}

/**
 * -s and -d lists expand to one rule per pair, as iptables does. Parsed addresses are shared
 * through `memo` when there is one (a Cidr is plain data).
 */
function expandAddresses(rule: Rule, srcs: readonly AddrArg[], dsts: readonly AddrArg[], family: Family, memo: RecentAddresses | undefined): Rule[] {
  if (srcs.length <= 1 && dsts.length <= 1) {
    if (srcs.length) rule.source = { value: cidrOf(srcs[0].text, srcs[0].token, family, memo), invert: srcs[0].invert };
    if (dsts.length) rule.destination = { value: cidrOf(dsts[0].text, dsts[0].token, family, memo), invert: dsts[0].invert };
    return [rule];
  }
  const parse = (a: AddrArg): Negatable<Cidr> => ({ value: cidrOf(a.text, a.token, family, memo), invert: a.invert });
  const ss = srcs.length ? srcs.map(parse) : [undefined];
  const ds = dsts.length ? dsts.map(parse) : [undefined];
  if (srcs.some((s) => s.invert) || dsts.some((d) => d.invert))
    throw new CmdError('! not allowed with multiple source or destination IP addresses', (srcs[0] ?? dsts[0]).token);
  const out: Rule[] = [];
  for (const s of ss)
    for (const d of ds) {
      const r: Rule = { ...rule, matches: rule.matches };
      if (s) r.source = s;
      else delete r.source;
      if (d) r.destination = d;
      else delete r.destination;
      out.push(r);
    }
  return out;
}

function cidrOf(text: string, token: number, family: Family, memo: RecentAddresses | undefined): Cidr {
  const c = memoCidr(text, family, memo);
  if (typeof c === 'string') throw new CmdError(c, token, 'bad-address');
  return c;
}

/** An address of `-s`/`-d` (shared through `memo`), or the error text for a bad one. */
export function memoCidr(text: string, family: Family, memo: RecentAddresses | undefined): Cidr | string {
  if (family === 'ipv4') {
    const e = parseCidr4Numbers(text, NUMBERS);
    if (e !== undefined) return e;
    const found = memo?.find4(NUMBERS.addr, NUMBERS.mask);
    if (found) return found;
    const c = cidr4(NUMBERS.addr, NUMBERS.mask);
    memo?.set('', c, NUMBERS.addr, NUMBERS.mask);
    return c;
  }
  const c = memo?.get(text);
  if (c && c.family === family) return c;
  const parsed = parseCidr(text, family);
  if (memo && typeof parsed !== 'string') memo.set(text, parsed);
  return parsed;
}
const NUMBERS: Cidr4Numbers = { addr: 0, mask: 0 };
