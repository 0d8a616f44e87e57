/**
 * One iptables command line (the argv after `iptables`, or a line of a restore file) turned into a
 * Command. Options go to extensions through the registry, as iptables' command_default does:
 * the most recently loaded extension that knows an option takes it; an unknown option with `-p`
 * set loads the protocol's match implicitly.
 */
import { parseCidr, type Cidr, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { protocolMatchName, protocolName, protocolNumber } from '../model/protocols';
import type { Counters, Negatable, Rule, TableName, Target } from '../model/ruleset';
import { getMatch, getTarget } from '../extensions/index';
import { ExtensionError, type Extension, type GivenOption, type NameTables, type OptionSpec, type ParseContext } from '../extensions/types';
import type { Token } from './tokenize';

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
const TABLES = new Set(['raw', 'mangle', 'nat', 'filter', 'security']);
const IFNAMSIZ = 16;

interface Loaded {
  ext: Extension;
  name: string;
  opts: GivenOption[];
  /** First token of `-m NAME` / `-j NAME`. */
  token: number;
  kind: 'match' | 'target';
}

/** An option's argument, or a CmdError naming the option that lacks it. */
function need(argv: string[], i: number, what: string): string {
  if (i >= argv.length) throw new CmdError(`option "${argv[i - 1]}" requires an argument${what ? ` (${what})` : ''}`, i - 1);
  return argv[i];
}

function noInvert(argv: string[], i: number, invertAt: number): never {
  throw new CmdError(`cannot have ! before ${argv[i]}`, invertAt);
}

function ruleNumber(extra: string[]): number {
  const n = Number(extra[0]);
  if (!(n >= 1)) throw new CmdError('invalid rule number', 0);
  return n;
}

/** Parse one command's tokens. */
export function parseCommand(tokens: Token[], ctx: CommandContext): ParsedCommand {
  const issues: Issue[] = [];
  try {
    const r = parseInner(tokens, ctx, issues) as ParsedCommand;
    r.issues = issues;
    return r;
  } catch (e) {
    if (e instanceof CmdError) {
      const t = tokens[Math.min(e.token, tokens.length - 1)];
      issues.push({ severity: 'error', code: e.code, message: e.message, line: ctx.line, column: t?.column ?? 1 });
      return { issues };
    }
    throw e;
  }
}

function parseInner(tokens: Token[], ctx: CommandContext, issues: Issue[]): Omit<ParsedCommand, 'issues'> {
  const argv = tokens.map((t) => t.text);
  let table: TableName | undefined;
  let op: Command['op'] | undefined;
  let chain: string | undefined;
  let extra: string[] = [];
  let otherFamily = false;
  const rule: Rule = { matches: [], line: ctx.line };
  const sources: { text: string; invert: boolean; token: number }[] = [];
  const dests: { text: string; invert: boolean; token: number }[] = [];
  const loaded: Loaded[] = [];
  let target: Loaded | undefined;
  let targetPlain: Target | undefined;
  let targetAt = -1;
  let invert = false;
  let invertAt = -1;

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '!') {
      if (invert) throw new CmdError('multiple consecutive ! not allowed', i);
      invert = true;
      invertAt = i;
      continue;
    }
    if (Object.hasOwn(COMMANDS, a)) {
      if (invert) noInvert(argv, i, invertAt);
      if (op) throw new CmdError(`cannot use ${a} with -${opLetter(op)}`, i, 'bad-command');
      op = COMMANDS[a];
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
    switch (a) {
      case '-t': case '--table': {
        if (invert) noInvert(argv, i, invertAt);
        const t = need(argv, i + 1, 'table');
        if (!TABLES.has(t)) throw new CmdError(`can't initialize iptables table \`${t}': Table does not exist`, i + 1, 'unknown-table');
        table = t as TableName;
        i++;
        continue;
      }
      case '-4': case '--ipv4':
        if (ctx.family !== 'ipv4') otherFamily = true;
        continue;
      case '-6': case '--ipv6':
        if (ctx.family !== 'ipv6') otherFamily = true;
        continue;
      case '-w': case '--wait': case '-W': case '--wait-interval':
        if (i + 1 < argv.length && /^\d+(\.\d+)?$/.test(argv[i + 1])) i++;
        continue;
      case '-n': case '--numeric': case '-v': case '--verbose': case '-x': case '--exact': case '--line-numbers':
        continue;
      case '-p': case '--protocol': {
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
      case '-s': case '--source': case '--src':
      case '-d': case '--destination': case '--dst': {
        const v = need(argv, i + 1, 'address');
        const list = a === '-s' || a === '--source' || a === '--src' ? sources : dests;
        if (list.length) throw new CmdError(`multiple ${list === sources ? '-s' : '-d'} flags not allowed`, i);
        for (const part of v.split(',')) list.push({ text: part, invert: invert, token: i + 1 });
        invert = false;
        i++;
        continue;
      }
      case '-i': case '--in-interface': case '-o': case '--out-interface': {
        const v = need(argv, i + 1, 'interface');
        if (v === '') throw new CmdError('Empty interface is likely to be undesired', i + 1, 'bad-interface');
        if (v.length >= IFNAMSIZ) throw new CmdError(`interface name \`${v}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`, i + 1, 'bad-interface');
        const which = a === '-i' || a === '--in-interface' ? 'inInterface' : 'outInterface';
        if (rule[which]) throw new CmdError(`multiple ${which === 'inInterface' ? '-i' : '-o'} flags not allowed`, i);
        rule[which] = { value: v, invert };
        invert = false;
        i++;
        continue;
      }
      case '-f': case '--fragment':
        if (ctx.family === 'ipv6') throw new CmdError('unknown option "-f"', i, 'unknown-option');
        rule.fragment = { invert };
        invert = false;
        continue;
      case '-c': case '--set-counters': {
        if (invert) noInvert(argv, i, invertAt);
        const p = need(argv, i + 1, 'packets'), b = need(argv, i + 2, 'bytes');
        if (!/^\d+$/.test(p) || !/^\d+$/.test(b)) throw new CmdError('-c packet counter not numeric', i + 1);
        rule.counters = { packets: Number(p), bytes: Number(b) };
        i += 2;
        continue;
      }
      case '-m': case '--match': {
        if (invert) noInvert(argv, i, invertAt);
        const name = need(argv, i + 1, 'match');
        // iptables looks for libxt_NAME.so; an empty name loads nothing
        if (name === '') throw new CmdError("Couldn't load match `':No such file or directory", i + 1, 'unknown-match');
        loadMatch(name, i, rule, loaded);
        i++;
        continue;
      }
      case '-j': case '--jump': case '-g': case '--goto': {
        if (invert) noInvert(argv, i, invertAt);
        const name = need(argv, i + 1, 'target');
        if (target || targetPlain) throw new CmdError('multiple -j flags not allowed', i);
        const isGoto = a === '-g' || a === '--goto';
        targetAt = i;
        if (name === 'ACCEPT' || name === 'DROP' || name === 'RETURN' || name === 'QUEUE') {
          if (isGoto) throw new CmdError(`goto '${name}' is not a chain`, i + 1, 'bad-target');
          targetPlain = { kind: 'standard', verdict: name };
        } else {
          const ext = isGoto ? undefined : getTarget(name);
          if (ext) {
            target = { ext, name, opts: [], token: i, kind: 'target' };
            loaded.push(target);
          } else if (isGoto || !/^[A-Z][A-Z0-9_]*$/.test(name) || !looksLikeTargetExtension(name)) {
            targetPlain = { kind: isGoto ? 'goto' : 'jump', chain: name };
          } else {
            targetPlain = { kind: 'unknown', name, tokens: [] };
          }
        }
        i++;
        continue;
      }
    }
    if (a.startsWith('--')) {
      let name = a.slice(2);
      let inline: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      // iptables' command_default offers an option to the target first, then to the loaded
      // matches, then loads the protocol's match; verbatim extensions take what nobody owns
      const afterUnknownTarget = targetPlain?.kind === 'unknown' && i > targetAt;
      let owner = afterUnknownTarget ? undefined : findOwner(loaded, name);
      const pm = !owner && rule.protocol && !rule.protocol.invert ? protoMatch(rule, ctx) : undefined;
      const pmLoaded = pm !== undefined && rule.matches.some((m) => m.name === pm);
      if (!owner && !afterUnknownTarget && pm && !pmLoaded) {
        const ext = getMatch(pm);
        if (ext && ext.options.some((o) => o.name === name || o.aliases?.includes(name))) {
          loadMatch(pm, -1, rule, loaded);
          owner = findOwner(loaded, name);
        }
      }
      if (!owner) {
        let sink: { tokens: string[] } | undefined = afterUnknownTarget && targetPlain?.kind === 'unknown' ? targetPlain : undefined;
        for (let k = rule.matches.length - 1; k >= 0 && !sink; k--) {
          const m = rule.matches[k];
          if (m.kind === 'unknown') sink = m;
        }
        if (!sink && pm && !pmLoaded && !getMatch(pm)) {
          // `-p sctp --dport 1` loads libxt_sctp even though podtables does not model it
          loadMatch(pm, -1, rule, loaded);
          sink = rule.matches[rule.matches.length - 1] as { tokens: string[] };
        }
        if (sink) {
          const n = absorbOption(tokens, i, invert);
          sink.tokens.push(...n.tokens);
          invert = false;
          i = n.next - 1;
          continue;
        }
        throw new CmdError(`unknown option "${a}"`, i, 'unknown-option');
      }
      const { loaded: l, spec } = owner;
      const inv = invert;
      invert = false;
      if (inv && !spec.invert) throw new CmdError(`${l.name}: option "--${spec.name}" cannot be inverted.`, invertAt, 'bad-invert');
      const args: string[] = [];
      let j = i + 1;
      let oldInvert = false;
      if (inline !== undefined) args.push(inline);
      while (args.length < spec.args) {
        if (j >= argv.length) throw new CmdError(`${l.name}: option "--${spec.name}" requires an argument`, i, 'missing-argument');
        if (argv[j] === '!' && spec.invert && args.length === 0 && !oldInvert) {
          oldInvert = true;
          j++;
          continue;
        }
        args.push(argv[j++]);
      }
      if (oldInvert) {
        issues.push({ severity: 'warning', code: 'intrapositioned-negation', line: ctx.line, column: tokens[i].column,
          message: `Using intrapositioned negation (\`--option ! this\`) is deprecated in favor of extrapositioned (\`! --option this\`).` });
      }
      l.opts.push({ name: spec.name, invert: inv || oldInvert, args, token: i });
      i = j - 1;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) throw new CmdError(`unknown option "${a}"`, i, 'unknown-option');
    throw new CmdError(`Bad argument \`${a}'`, i, 'bad-argument');
  }
  if (invert) throw new CmdError('! at the end of the line has nothing to negate', invertAt);
  if (!op) throw new CmdError('no command specified', 0, 'no-command');
  if (otherFamily) return { otherFamily, table };
  // iptables itself (not the kernel) refuses DROP in nat; a DROP policy there still loads
  if (targetPlain?.kind === 'standard' && targetPlain.verdict === 'DROP' && (table ?? ctx.table) === 'nat')
    throw new CmdError('The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.', targetAt + 1, 'drop-in-nat');

  // let each extension check its options, as the final_check step does
  const pctx: ParseContext = { family: ctx.family, table: table ?? ctx.table, protocol: rule.protocol, names: ctx.names };
  for (const l of loaded) {
    try {
      const info = l.ext.parse(l.opts, pctx);
      if (l.kind === 'target') rule.target = { kind: 'extension', name: l.name, info };
      else rule.matches[(l as Loaded & { index: number }).index] = { kind: 'match', name: l.name, info };
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

  const c = chain as string;
  let command: Command;
  switch (op) {
    case 'append': command = { op, chain: c, rules: expandAddresses(rule, sources, dests, ctx.family) }; break;
    case 'insert': command = { op, chain: c, position: extra.length ? ruleNumber(extra) : 1, rules: expandAddresses(rule, sources, dests, ctx.family) }; break;
    case 'replace': command = { op, chain: c, position: ruleNumber(extra), rules: expandAddresses(rule, sources, dests, ctx.family) }; break;
    case 'delete': command = extra.length ? { op, chain: c, position: ruleNumber(extra) } : { op, chain: c, rules: expandAddresses(rule, sources, dests, ctx.family) }; break;
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
  if (op === 'new-chain' || op === 'rename-chain') checkChainName(op === 'new-chain' ? c : extra[0], argv.indexOf(op === 'new-chain' ? c : extra[0]));
  return { command, table };
}

function opLetter(op: Command['op']): string {
  return Object.entries(COMMANDS).find(([, v]) => v === op)?.[0].slice(1) ?? op;
}

/** Targets iptables would try to load as an extension rather than as a chain name. */
function looksLikeTargetExtension(name: string): boolean {
  return KNOWN_TARGET_NAMES.has(name);
}
/** Target extensions iptables ships that podtables may not model; kept verbatim when met. */
const KNOWN_TARGET_NAMES = new Set([
  'AUDIT', 'CHECKSUM', 'CLASSIFY', 'CLUSTERIP', 'CONNMARK', 'CONNSECMARK', 'CT', 'DNAT', 'DNPT', 'DSCP', 'ECN',
  'HL', 'HMARK', 'IDLETIMER', 'LED', 'LOG', 'MARK', 'MASQUERADE', 'NETMAP', 'NFLOG', 'NFQUEUE', 'NOTRACK',
  'RATEEST', 'REDIRECT', 'REJECT', 'SECMARK', 'SET', 'SNAT', 'SNPT', 'SYNPROXY', 'TCPMSS', 'TCPOPTSTRIP',
  'TEE', 'TOS', 'TPROXY', 'TRACE', 'TTL', 'ULOG',
]);

function loadMatch(name: string, token: number, rule: Rule, loaded: Loaded[]): void {
  const ext = getMatch(name);
  const index = rule.matches.length;
  if (ext) {
    rule.matches.push({ kind: 'match', name, info: undefined });
    loaded.push(Object.assign({ ext, name, opts: [], token, kind: 'match' as const }, { index }));
  } else {
    rule.matches.push({ kind: 'unknown', name, tokens: [] });
  }
}

function findOwner(loaded: Loaded[], name: string): { loaded: Loaded; spec: OptionSpec } | undefined {
  for (let k = loaded.length - 1; k >= 0; k--) {
    const spec = loaded[k].ext.options.find((o) => o.name === name || o.aliases?.includes(name));
    if (spec) return { loaded: loaded[k], spec };
  }
  // getopt_long takes an unambiguous abbreviation (`--to-port` for `--to-ports`), as Istio writes it
  const hits: { loaded: Loaded; spec: OptionSpec }[] = [];
  for (let k = loaded.length - 1; k >= 0; k--)
    for (const spec of loaded[k].ext.options)
      if ([spec.name, ...(spec.aliases ?? [])].some((n) => n.startsWith(name))) hits.push({ loaded: loaded[k], spec });
  return hits.length === 1 ? hits[0] : undefined;
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
function absorbOption(tokens: Token[], i: number, invert: boolean): { tokens: string[]; next: number } {
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

function checkChainName(name: string, token: number): void {
  if (name.length >= 29) throw new CmdError(`chain name \`${name}' too long (must be under 29 chars)`, token, 'bad-chain');
  if (name.startsWith('-') || name.startsWith('!')) throw new CmdError(`chain name must not start with \`${name[0]}'`, token, 'bad-chain');
  if (['ACCEPT', 'DROP', 'RETURN', 'QUEUE'].includes(name) || getTarget(name))
    throw new CmdError(`chain name may not clash with target name`, token, 'bad-chain');
}

/**
 * -s and -d lists expand to one rule per pair, as iptables does. Parsed addresses are memoised:
 * dumps repeat them (kube-proxy's pod CIDR on every Service), and a Cidr is plain data.
 */
function expandAddresses(rule: Rule, srcs: { text: string; invert: boolean; token: number }[], dsts: typeof srcs, family: Family): Rule[] {
  const parse = (a: (typeof srcs)[number]): Negatable<Cidr> => ({ value: cidrOf(a.text, a.token, family), invert: a.invert });
  if (srcs.length <= 1 && dsts.length <= 1) {
    if (srcs.length) rule.source = parse(srcs[0]);
    if (dsts.length) rule.destination = parse(dsts[0]);
    return [rule];
  }
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

const cidrMemo = { ipv4: new Map<string, Cidr>(), ipv6: new Map<string, Cidr>() };

function cidrOf(text: string, token: number, family: Family): Cidr {
  const memo = cidrMemo[family];
  let c = memo.get(text);
  if (c) return c;
  const parsed = parseCidr(text, family);
  if (typeof parsed === 'string') throw new CmdError(parsed, token, 'bad-address');
  if (memo.size > 50_000) memo.clear();
  memo.set(text, (c = parsed));
  return c;
}
