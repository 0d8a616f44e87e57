/**
 * The restore reader's quick path for `-A CHAIN …` lines of the shape dumps are made of: words
 * read straight from the line, flags told apart by their characters, options looked up exactly.
 * It gives the rule the general reader (parseWords) would give, or nothing: anything unusual (a
 * tab, a backslash or quote inside a word, `!` as an argument, an abbreviated or `=` option, an
 * option no loaded extension takes, an unknown extension, any error or warning) is left to the
 * general reader, which then says what it says about the line.
 */
import { protocolName, protocolNumber } from '../model/protocols';
import type { Cidr, Family } from '../model/addr';
import type { MatchInstance, Negatable, Rule, TableName, Target } from '../model/ruleset';
import { allExtensions, getTarget } from '../extensions/index';
import type { Extension, GivenOption, MatchExtension, OptionSpec, ParseContext } from '../extensions/types';
import { isFlag, looksLikeTargetExtension, memoCidr, optionTable, type CommandContext } from './command';

/** What the quick path read: the chain to append to and the rule. */
export interface QuickRule {
  chain: string;
  rule: Rule;
}

/**
 * The extensions a line loads, with the options each was given: parallel lists reused from line
 * to line, `loads` of them filled (emptying a list would give up its storage).
 */
const tables: QuickOptions[] = [];
const given: (GivenOption[] | undefined)[] = [];
/** A match's place in the rule's match list, or -1 for the target. */
const places: number[] = [];
let loads = 0;
/** The rule's matches, `matchCount` of them filled. */
const found: MatchInstance[] = [];
let matchCount = 0;
/** The word after the last one read by `word`, and whether that one was quoted. */
let end = 0;
let quoted = false;
/** Where the next double quote of the line is (-1 when none is left). */
let quoteAt = -1;
const IFNAMSIZ = 16;
type Verdict = 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE';

/**
 * The verdict a `-j` word names, if it is one. Compared, not looked up: a lookup by a string the
 * engine has not seen as a key before costs a search of its table of such strings.
 */
function verdict(v: string): Verdict | undefined {
  if (v.length === 6) return v === 'ACCEPT' ? 'ACCEPT' : v === 'RETURN' ? 'RETURN' : undefined;
  if (v.length === 4) return v === 'DROP' ? 'DROP' : undefined;
  return v === 'QUEUE' ? 'QUEUE' : undefined;
}

/**
 * What the quick path needs of an extension, in one shape for all of them (extension objects
 * differ in shape, and reading each one's fields would make the reader's code handle every
 * shape): its name and limits, and its option words (`--name`, `--alias`) with their options,
 * iptables' own flags left out.
 */
interface QuickOptions {
  ext: Extension;
  /** The extension's parse, called with the extension as `this`. */
  parse: Extension['parse'];
  name: string;
  tables: readonly TableName[] | undefined;
  protocol: string | undefined;
  family: Family | undefined;
  words: string[];
  specs: OptionSpec[];
}

const quickTables = new Map<Extension, QuickOptions>();

/**
 * The option words of `ext` as the general reader's table has them, without any word that is one
 * of iptables' own flags (which that reader takes as the flag): such a word is left to it.
 */
function quickOptions(ext: Extension): QuickOptions {
  let q = quickTables.get(ext);
  if (!q) {
    q = { ext, parse: ext.parse, name: ext.name, tables: ext.tables, protocol: ext.protocol, family: ext.family, words: [], specs: [] };
    for (const [w, spec] of optionTable(ext))
      if (!isFlag(w)) {
        q.words.push(w);
        q.specs.push(spec);
      }
    quickTables.set(ext, q);
  }
  return q;
}

/**
 * The option of the latest loaded extension (from the last loaded down) spelled exactly as the
 * word of `line` from `i` to `e`; its extension's place is left in `owner`. The word is compared
 * in place: no string is made for it.
 */
function findOption(line: string, i: number, e: number): OptionSpec | undefined {
  const len = e - i;
  for (let k = loads - 1; k >= 0; k--) {
    const { words, specs } = tables[k];
    for (let j = 0; j < words.length; j++)
      if (words[j].length === len && line.startsWith(words[j], i)) {
        owner = k;
        return specs[j];
      }
  }
  return undefined;
}
let owner = -1;
/** What a used entry of the match list holds once its line is done (shaped as the entries are). */
const UNSET: MatchInstance = { kind: 'match', name: '', info: undefined };

/**
 * The word of `line` at `i` (a word's first character), leaving its end in `end`; undefined when
 * the line ends or the word is of a shape the quick path leaves alone. A quoted word must be
 * quoted whole (`"a b"` then a space or the end), without backslashes.
 */
function word(line: string, i: number): string | undefined {
  if (i >= line.length) return undefined;
  let e = line.indexOf(' ', i);
  if (e < 0) e = line.length;
  if (quoteAt >= 0 && quoteAt < e) {
    if (quoteAt !== i) return undefined;
    const close = line.indexOf('"', i + 1);
    if (close < 0) return undefined;
    const back = line.indexOf('\\', i + 1);
    if ((back >= 0 && back < close) || (close + 1 < line.length && line.charCodeAt(close + 1) !== 32)) return undefined;
    quoteAt = line.indexOf('"', close + 1);
    end = close + 1;
    quoted = true;
    return line.slice(i + 1, close);
  }
  end = e;
  quoted = false;
  return line.slice(i, e);
}

/** Add an extension the line loads (its place in `places` is set by the caller). */
function load(ext: Extension): void {
  tables[loads] = quickOptions(ext);
  given[loads++] = undefined;
}

/**
 * A rule with the fields that are given, in the general reader's order (matches, line, protocol,
 * target, source, destination), made as one literal: an object grown field by field has room for
 * four and keeps the rest in a second block, and a dump has a hundred thousand rules.
 */
function makeRule(matches: MatchInstance[], line: number, protocol: Negatable<string> | undefined, target: Target | undefined,
  source: Negatable<Cidr> | undefined, destination: Negatable<Cidr> | undefined): Rule {
  if (protocol) {
    if (target) {
      if (source) return destination ? { matches, line, protocol, target, source, destination } : { matches, line, protocol, target, source };
      return destination ? { matches, line, protocol, target, destination } : { matches, line, protocol, target };
    }
    if (source) return destination ? { matches, line, protocol, source, destination } : { matches, line, protocol, source };
    return destination ? { matches, line, protocol, destination } : { matches, line, protocol };
  }
  if (target) {
    if (source) return destination ? { matches, line, target, source, destination } : { matches, line, target, source };
    return destination ? { matches, line, target, destination } : { matches, line, target };
  }
  if (source) return destination ? { matches, line, source, destination } : { matches, line, source };
  return destination ? { matches, line, destination } : { matches, line };
}

/** The `-p` words of most rules, with their numbers as protocolNumber gives them, to be compared in place. */
const COMMON_PROTOCOLS = ['tcp', 'udp', 'icmp', 'sctp', 'all'];
const COMMON_NUMBERS = COMMON_PROTOCOLS.map((p) => protocolNumber(p)!);

/**
 * The registered matches by the length of their names, with the names in lists of their own
 * (extension objects differ in shape, and reading `name` from each would make the reader's code
 * handle every shape).
 */
const MATCHES_BY_LENGTH: MatchExtension[][] = [];
const MATCH_NAMES_BY_LENGTH: string[][] = [];
for (const e of allExtensions())
  if (e.kind === 'match') {
    (MATCHES_BY_LENGTH[e.name.length] ??= []).push(e);
    (MATCH_NAMES_BY_LENGTH[e.name.length] ??= []).push(e.name);
  }

/** The registered match named by the word of `line` from `i` to `e` (getMatch, without making the word). */
function matchAt(line: string, i: number, e: number): MatchExtension | undefined {
  const names = MATCH_NAMES_BY_LENGTH[e - i];
  if (names) for (let k = 0; k < names.length; k++) if (line.startsWith(names[k], i)) return MATCHES_BY_LENGTH[e - i][k];
  return undefined;
}

/** The start of the next word at or after `i` (the line's length when none is left). */
function skip(line: string, i: number): number {
  while (i < line.length && line.charCodeAt(i) === 32) i++;
  return i;
}

/**
 * Read `line` (which starts with `-A `) as the general reader would, or return undefined to leave
 * it to that reader. `lineNo` becomes the rule's line.
 */
export function quickAppend(line: string, lineNo: number, ctx: CommandContext): QuickRule | undefined {
  // the shared lists serve one line at a time: a line read while another is (by an extension's
  // parser) goes the general way
  if (busy || line.indexOf('\t') >= 0) return undefined;
  busy = true;
  quoteAt = line.indexOf('"');
  loads = matchCount = 0;
  try {
    return readRule(line, lineNo, ctx);
  } finally {
    // nothing of the line may outlive it in the shared lists (its words would keep the text alive)
    for (let k = 0; k < loads; k++) given[k] = undefined;
    for (let k = 0; k < matchCount; k++) found[k] = UNSET;
    busy = false;
  }
}
let busy = false;

function readRule(line: string, lineNo: number, ctx: CommandContext): QuickRule | undefined {
  let i = skip(line, 3);
  if (i >= line.length || line.charCodeAt(i) === 45 || line.charCodeAt(i) === 33) return undefined;
  const chain = word(line, i);
  if (chain === undefined || quoted) return undefined;
  i = skip(line, end);
  let protocol: Negatable<string> | undefined;
  // a rule with interfaces is built field by field as the general reader builds it, so that its
  // fields come in the same order; others are made whole at the end (makeRule)
  let plain: Rule | undefined;
  let target: Target | undefined;
  let hasTarget = false;
  let src: string | undefined;
  let srcInvert = false;
  let dst: string | undefined;
  let dstInvert = false;
  let invert = false;
  // words are counted as the general reader's argv counts them (an option's token is its place)
  let w = 2;
  const n = line.length;
  while (i < n) {
    const at = w++;
    // flags and options are told apart by their characters, without making strings of them
    const c0 = line.charCodeAt(i);
    if (c0 === 33 && (i + 1 === n || line.charCodeAt(i + 1) === 32)) {
      if (invert) return undefined;
      invert = true;
      i = skip(line, i + 1);
      continue;
    }
    if (c0 !== 45) return undefined;
    const c = line.charCodeAt(i + 1);
    if (i + 2 === n || line.charCodeAt(i + 2) === 32) {
      // a flag of two characters, then the one word every flag below takes
      i = skip(line, i + 2);
      if (c === 109) {
        // -m: the match is found by comparing its name in place (no string is made for it)
        let e = line.indexOf(' ', i);
        if (e < 0) e = n;
        const ext = invert || (quoteAt >= 0 && quoteAt < e) ? undefined : matchAt(line, i, e);
        if (!ext) return undefined;
        places[loads] = matchCount;
        load(ext);
        found[matchCount++] = { kind: 'match', name: tables[loads - 1].name, info: undefined };
        i = skip(line, e);
        w++;
        continue;
      }
      if (c === 112) {
        // -p: a common protocol word is compared in place
        let e = line.indexOf(' ', i);
        if (e < 0) e = n;
        let num: number | undefined;
        for (let k = 0; k < COMMON_PROTOCOLS.length && num === undefined; k++)
          if (COMMON_PROTOCOLS[k].length === e - i && line.startsWith(COMMON_PROTOCOLS[k], i)) num = COMMON_NUMBERS[k];
        if (num === undefined) {
          const v = word(line, i);
          if (v === undefined || quoted) return undefined;
          num = protocolNumber(v);
          e = end;
        }
        if (num === undefined || protocol || (num === 0 && invert)) return undefined;
        protocol = { value: num === 0 ? 'all' : protocolName(num), invert };
        if (plain) plain.protocol = protocol;
        invert = false;
        i = skip(line, e);
        w++;
        continue;
      }
      const v = word(line, i);
      if (v === undefined || quoted) return undefined;
      i = skip(line, end);
      w++;
      if (c === 115 || c === 100) {
        // -s, -d: one address (a list makes one rule per address: the general reader's)
        if (v.indexOf(',') >= 0) return undefined;
        if (c === 115) {
          if (src !== undefined) return undefined;
          src = v;
          srcInvert = invert;
        } else {
          if (dst !== undefined) return undefined;
          dst = v;
          dstInvert = invert;
        }
        invert = false;
      } else if (c === 105 || c === 111) {
        // -i, -o
        const which = c === 105 ? 'inInterface' : 'outInterface';
        if (v === '' || v.length >= IFNAMSIZ) return undefined;
        if (!plain) {
          plain = {} as Rule;
          plain.matches = [];
          plain.line = lineNo;
          if (protocol) plain.protocol = protocol;
        }
        if (plain[which]) return undefined;
        plain[which] = { value: v, invert };
        invert = false;
      } else if (c === 106) {
        // -j
        if (invert || hasTarget) return undefined;
        hasTarget = true;
        const std = verdict(v);
        if (std) {
          // iptables itself refuses DROP in nat: the general reader says so
          if (std === 'DROP' && ctx.table === 'nat') return undefined;
          target = { kind: 'standard', verdict: std };
        } else {
          const ext = getTarget(v);
          if (ext) {
            places[loads] = -1;
            load(ext);
          } else if (looksLikeTargetExtension(v) && /^[A-Z][A-Z0-9_]*$/.test(v)) return undefined;
          else target = { kind: 'jump', chain: v };
        }
      } else return undefined;
      continue;
    }
    if (c !== 45) return undefined;
    // `--name`: the latest loaded extension that has it, spelled exactly (iptables' own long
    // flags, `=` values, abbreviations and quotes are the general reader's)
    let e = line.indexOf(' ', i);
    if (e < 0) e = n;
    if (quoteAt >= 0 && quoteAt < e) return undefined;
    const spec = findOption(line, i, e);
    if (!spec) return undefined;
    const k = owner;
    if (invert && !spec.invert) return undefined;
    i = skip(line, e);
    let args: string[] | undefined;
    for (let q = 0; q < spec.args; q++) {
      const v = word(line, i);
      // `!` among the arguments is intrapositioned negation or a literal: the general reader's
      if (v === undefined || v === '!') return undefined;
      i = skip(line, end);
      w++;
      if (args) args.push(v);
      else args = [v];
    }
    const o: GivenOption = { name: spec.name, invert, args: args ?? [], token: at };
    invert = false;
    const list = given[k];
    if (list) list.push(o);
    else given[k] = [o];
  }
  if (invert) return undefined;
  return finishRule(chain, lineNo, ctx, protocol, plain, target, src, srcInvert, dst, dstInvert);
}

/**
 * The rule of a line read to its end: the extensions' parsers, the addresses, the rule made
 * whole. Apart from readRule so that the engine compiles each on its own (a change of the shapes
 * this meets does not make it compile the word loop again).
 */
function finishRule(chain: string, lineNo: number, ctx: CommandContext, protocol: Negatable<string> | undefined, plain: Rule | undefined,
  target: Target | undefined, src: string | undefined, srcInvert: boolean, dst: string | undefined, dstInvert: boolean): QuickRule | undefined {
  // the extensions check their options; any complaint is the general reader's to report
  const pctx: ParseContext = { family: ctx.family, table: ctx.table, protocol, names: ctx.names };
  for (let k = 0; k < loads; k++) {
    const q = tables[k];
    let info: unknown;
    try {
      info = q.parse.call(q.ext, given[k] ?? [], pctx);
    } catch {
      return undefined;
    }
    if (places[k] < 0) target = { kind: 'extension', name: q.name, info };
    else (found[places[k]] as { info: unknown }).info = info;
    if (q.tables && !q.tables.includes(ctx.table)) return undefined;
    if (q.protocol && (!protocol || protocol.invert || protocol.value !== q.protocol)) return undefined;
    if (q.family && q.family !== ctx.family) return undefined;
  }
  // the rule's own list of exactly its matches, made as a literal where it can be (slice costs more)
  const matches = matchCount === 0 ? [] : matchCount === 1 ? [found[0]] : matchCount === 2 ? [found[0], found[1]] : matchCount === 3 ? [found[0], found[1], found[2]] : found.slice(0, matchCount);
  let source: Negatable<Cidr> | undefined;
  let destination: Negatable<Cidr> | undefined;
  if (src !== undefined) {
    const c = memoCidr(src, ctx.family, ctx.addresses);
    if (typeof c === 'string') return undefined;
    source = { value: c, invert: srcInvert };
  }
  if (dst !== undefined) {
    const c = memoCidr(dst, ctx.family, ctx.addresses);
    if (typeof c === 'string') return undefined;
    destination = { value: c, invert: dstInvert };
  }
  if (!plain) return { chain, rule: makeRule(matches, lineNo, protocol, target, source, destination) };
  const rule = plain;
  if (target) rule.target = target;
  rule.matches = matches;
  if (source) rule.source = source;
  if (destination) rule.destination = destination;
  return { chain, rule };
}
