/**
 * Small builders of model values for the generator: matches and targets go through the extension
 * registry (the extension's own parser builds its structure); an extension not registered yet is
 * kept as an unknown one whose words are already in iptables-save's canonical form, so the
 * output is the kernel's either way.
 */
import { parseCidr, type Cidr, type Family } from '../../model/addr';
import type { MatchInstance, Rule, TableName, Target } from '../../model/ruleset';
import { getMatch, getTarget } from '../../extensions/index';
import type { Extension, GivenOption, ParseContext } from '../../extensions/types';

/** What every builder needs to know about the rule it makes. */
export interface RuleContext {
  family: Family;
  table: TableName;
}

function options(ext: Extension, words: string[]): GivenOption[] {
  const out: GivenOption[] = [];
  for (let i = 0; i < words.length; i++) {
    let invert = false;
    if (words[i] === '!') {
      invert = true;
      i++;
    }
    const name = words[i].replace(/^--/, '');
    const spec = ext.options.find((o) => o.name === name || o.aliases?.includes(name));
    if (!spec) throw new Error(`kube-proxy generator: ${ext.name} has no option --${name}`);
    out.push({ name: spec.name, invert, args: words.slice(i + 1, i + 1 + spec.args), token: i });
    i += spec.args;
  }
  return out;
}

// Rules are plain data that nobody mutates, so equal matches, targets and addresses are built
// once and shared: at 30,000 Services this halves generation time and memory.
const matchCache = new Map<string, MatchInstance>();
const targetCache = new Map<string, Target>();
const cidrCache = new Map<string, Cidr>();
const commentCache = new Map<string, MatchInstance>();
const CACHE_LIMIT = 100_000;

const keyOf = (ctx: RuleContext, protocol: string | undefined, name: string, words: string[]) => `${ctx.family}\0${ctx.table}\0${protocol}\0${name}\0${words.join('\0')}`;

/** `-m name words…` (words as iptables-save prints them). */
export function match(ctx: RuleContext, protocol: string | undefined, name: string, ...words: string[]): MatchInstance {
  // A comment does not depend on family, table or protocol; a service's endpoint chains share theirs.
  if (name === 'comment') {
    let c = commentCache.get(words[1]);
    if (!c) {
      c = buildMatch(ctx, protocol, name, words);
      if (commentCache.size > CACHE_LIMIT) commentCache.clear();
      commentCache.set(words[1], c);
    }
    return c;
  }
  const key = keyOf(ctx, protocol, name, words);
  let m = matchCache.get(key);
  if (!m) {
    m = buildMatch(ctx, protocol, name, words);
    if (matchCache.size > CACHE_LIMIT) matchCache.clear();
    matchCache.set(key, m);
  }
  return m;
}

function buildMatch(ctx: RuleContext, protocol: string | undefined, name: string, words: string[]): MatchInstance {
  const ext = getMatch(name);
  if (!ext) return { kind: 'unknown', name, tokens: words };
  const pctx: ParseContext = { family: ctx.family, table: ctx.table, protocol: protocol ? { value: protocol, invert: false } : undefined };
  return { kind: 'match', name, info: ext.parse(options(ext, words), pctx) };
}

/** `-j NAME words…` for a target extension. */
export function target(ctx: RuleContext, protocol: string | undefined, name: string, ...words: string[]): Target {
  // A DNAT names one endpoint: nothing to share.
  if (name === 'DNAT') return buildTarget(ctx, protocol, name, words);
  const key = keyOf(ctx, protocol, name, words);
  let t = targetCache.get(key);
  if (!t) {
    t = buildTarget(ctx, protocol, name, words);
    if (targetCache.size > CACHE_LIMIT) targetCache.clear();
    targetCache.set(key, t);
  }
  return t;
}

function buildTarget(ctx: RuleContext, protocol: string | undefined, name: string, words: string[]): Target {
  const ext = getTarget(name);
  if (!ext) return { kind: 'unknown', name, tokens: words };
  const pctx: ParseContext = { family: ctx.family, table: ctx.table, protocol: protocol ? { value: protocol, invert: false } : undefined };
  return { kind: 'extension', name, info: ext.parse(options(ext, words), pctx) };
}

const jumps = new Map<string, Target>();
const protocols = new Map<string, { value: string; invert: boolean }>();

/** `-j CHAIN` (one shared value per top-level chain: KUBE-MARK-MASQ alone is the target of most rules). */
export const jump = (chain: string): Target => {
  if (!chain.startsWith('KUBE-') || /^KUBE-(SEP|SVC|SVL|EXT|FW)-/.test(chain)) return { kind: 'jump', chain };
  let t = jumps.get(chain);
  if (!t) jumps.set(chain, (t = { kind: 'jump', chain }));
  return t;
};
const VERDICTS = { ACCEPT: { kind: 'standard', verdict: 'ACCEPT' }, DROP: { kind: 'standard', verdict: 'DROP' }, RETURN: { kind: 'standard', verdict: 'RETURN' } } as const;
/** `-j ACCEPT|DROP|RETURN`. */
export const verdict = (v: 'ACCEPT' | 'DROP' | 'RETURN'): Target => VERDICTS[v];

/** The fields of one rule, in the words kube-proxy uses. */
export interface RuleSpec {
  comment?: string;
  protocol?: string;
  source?: string;
  notSource?: boolean;
  destination?: string;
  notDestination?: boolean;
  /** Matches after the comment (and before the protocol match when `dport` is set after them). */
  matches?: MatchInstance[];
  /** Adds `-m <protocol> --dport N` after `matches`. */
  dport?: number;
  /** Matches after the protocol match. */
  after?: MatchInstance[];
  target?: Target;
}

function cidr(text: string, family: Family): Cidr {
  if (family === 'ipv4') {
    const q = quadCidr(text);
    if (q) return q;
  }
  const key = `${family}\0${text}`;
  let c = cidrCache.get(key);
  if (!c) {
    const parsed = parseCidr(text, family);
    if (typeof parsed === 'string') throw new Error(`kube-proxy generator: ${text}: ${parsed}`);
    if (cidrCache.size > CACHE_LIMIT) cidrCache.clear();
    cidrCache.set(key, (c = parsed));
  }
  return c;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** `a.b.c.d[/n]` without ipaddr.js (a profile of 30,000 Services put a fifth of the time there); undefined for anything else. */
function quadCidr(text: string): Cidr | undefined {
  const m = QUAD.exec(text);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    if (m[i].length > 1 && m[i][0] === '0') return undefined;
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  const prefix = m[5] === undefined ? 32 : Number(m[5]);
  if (prefix > 32) return undefined;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { family: 'ipv4', addr: BigInt((v & mask) >>> 0), mask: BigInt(mask) };
}

/** One rule built from its spec. */
export function rule(ctx: RuleContext, s: RuleSpec): Rule {
  const r: Rule = { matches: [] };
  if (s.source) r.source = { value: cidr(s.source, ctx.family), invert: !!s.notSource };
  if (s.destination) r.destination = { value: cidr(s.destination, ctx.family), invert: !!s.notDestination };
  if (s.protocol) {
    let p = protocols.get(s.protocol);
    if (!p) protocols.set(s.protocol, (p = { value: s.protocol, invert: false }));
    r.protocol = p;
  }
  if (s.comment !== undefined) r.matches.push(match(ctx, s.protocol, 'comment', '--comment', s.comment));
  r.matches.push(...(s.matches ?? []));
  if (s.protocol && (s.dport !== undefined || s.after)) {
    r.matches.push(s.dport !== undefined ? match(ctx, s.protocol, s.protocol, '--dport', String(s.dport)) : match(ctx, s.protocol, s.protocol));
  }
  r.matches.push(...(s.after ?? []));
  if (s.target) r.target = s.target;
  return r;
}
