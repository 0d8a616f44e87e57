/**
 * Random rulesets over the whole supported grammar, for property tests against the kernel: all
 * five tables with random policies, user chains wired by jumps and gotos without loops, negated
 * addresses, interfaces with `+`, protocols, `-f`, and for every registered extension rule text
 * drawn from its vector rows (ok: true), so that a newly registered extension is covered at once.
 */
import fc from 'fast-check';
import { allExtensions, getMatch, getTarget } from '../../src/extensions/index';
import type { Extension } from '../../src/extensions/types';
import type { Family } from '../../src/model/addr';
import { BUILTIN_CHAINS, TABLE_NAMES, type TableName } from '../../src/model/ruleset';
import { ALL_VECTORS } from '../vectors/index';
import type { Row } from '../vectors/types';

/** A vector row with what placing it needs. */
interface Body {
  row: Row;
  extension: string;
  /** The extensions the row names (`-m`, `-j`), registered ones only. */
  uses: Extension[];
  has: { p: boolean; s: boolean; d: boolean; i: boolean; o: boolean; f: boolean; j: boolean };
}

/** Vector sets that describe the rule header rather than one extension. */
const CORE_SETS = new Set(['core', 'linkerd-core']);

function bodyOf(row: Row, extension: string): Body {
  const r = ` ${row.rule} `;
  const uses: Extension[] = [];
  for (const m of r.matchAll(/\s(?:-m|--match)\s+(\S+)/g)) {
    const e = getMatch(m[1]);
    if (e) uses.push(e);
  }
  for (const m of r.matchAll(/\s(?:-j|--jump)\s+(\S+)/g)) {
    const e = getTarget(m[1]);
    if (e) uses.push(e);
  }
  const has = (re: RegExp) => re.test(r);
  return {
    row, extension, uses,
    has: { p: has(/\s(-p|--protocol)\s/), s: has(/\s(-s|--source)\s/), d: has(/\s(-d|--destination)\s/), i: has(/\s(-i|--in-interface)\s/),
      o: has(/\s(-o|--out-interface)\s/), f: has(/\s-f\s/), j: has(/\s(-j|-g|--jump|--goto)\s/) },
  };
}

/**
 * Whether a row checked in one family also reads in the other: no addresses, no ICMP of either
 * kind, no `-f`, and no extension tied to one family (ttl, hl, …). The kernel's answer, not the
 * row's expectation, is what the property compares against.
 */
function portable(row: Row, family: Family): boolean {
  // ipsets have a family of their own
  if (row.setup) return false;
  if (/\d+\.\d+\.\d+\.\d+|[0-9a-f]*::|icmp|\s-f\b|--reject-with|\b(ttl|hl|TTL|HL)\b/.test(` ${row.rule}`)) return false;
  return bodyOf(row, '').uses.every((e) => !e.family || e.family === family);
}

/** Rule bodies per family: rows of every registered extension plus the core rows. */
export function bodies(family: Family): { bodies: Body[]; uncovered: string[] } {
  const names = new Set(allExtensions().map((e) => e.name));
  const out: Body[] = [];
  for (const set of ALL_VECTORS) {
    if (!names.has(set.extension) && !CORE_SETS.has(set.extension)) continue;
    for (const row of set.rows) if (row.ok && ((row.family ?? 'ipv4') === family || portable(row, family))) out.push(bodyOf(row, set.extension));
  }
  const covered = new Set(out.map((b) => b.extension));
  return { bodies: out, uncovered: [...names].filter((n) => !covered.has(n)) };
}

/**
 * Where a body may go: a row pinned to a built-in chain goes there; rows with a target extension
 * or a hook-limited match go to ISO, a user chain nobody jumps to (where the vector test checked
 * them, in its own unreferenced chain); plain match rows go anywhere in a table they allow.
 */
function fits(b: Body, table: TableName, chain: string): boolean {
  const targetExt = b.uses.some((e) => e.kind === 'target');
  if (b.row.table || targetExt || b.row.chain) {
    if ((b.row.table ?? 'filter') !== table) return false;
  } else if (b.uses.some((e) => e.tables && !e.tables.includes(table))) return false;
  if (b.row.chain) return b.row.chain === chain;
  if (table === 'nat' && /\s-j DROP\b/.test(` ${b.row.rule}`)) return false;
  // hook limits, fixed or set by options (hooksFor: policy --dir, physdev --physdev-out, …)
  if (targetExt || b.uses.some((e) => e.hooks || e.hooksFor)) return chain === 'ISO';
  return true;
}

const V4 = ['10.0.0.1', '192.168.7.0/24', '1.2.3.4/255.255.0.0', '0.0.0.0/0', '172.16.5.9/12', '8.8.8.8/32', '10.1.2.3/255.0.255.0'];
const V6 = ['2001:db8::1', '2001:db8::/32', 'fe80::1/64', '::/0', '::ffff:1.2.3.4', '2001:db8:0:0:1::1/80', '::1/128'];
// no bare `+`: `! -i +` saves differently per backend (legacy drops it) and -L -v shows `-i +`
// as `+` (legacy) or `*` (nft)
const IFACES = ['eth0', 'eth+', 'veth1234abcd', 'lo', 'br-0123456789a', 'wg0.100', 'a+b'];
const PROTOS: Record<Family, string[]> = { ipv4: ['tcp', 'udp', 'icmp', '47', 'all', '132', 'esp'], ipv6: ['tcp', 'udp', 'ipv6-icmp', '47', 'all', 'icmpv6', 'esp'] };
const USER_NAMES = ['U0', 'KUBE-SVC-ABCDEF0123456789', 'DOS~Pro-t_ect', 'a.b', 'x', 'ISTIO_OUTPUT', 'chain-with-28-characters-xx'];

const IN_OK = new Set(['PREROUTING', 'INPUT', 'FORWARD']);
const OUT_OK = new Set(['FORWARD', 'OUTPUT', 'POSTROUTING']);

/** One generated case: its restore text and the setup commands its rows need. */
export interface Case {
  family: Family;
  text: string;
}

/**
 * Choices drawn from one seeded generator (mulberry32). fast-check draws the seed, so a run is
 * replayed from its fast-check seed; drawing through fc.gen() instead keeps every arbitrary it
 * was given alive, which runs out of memory over a fuzz run.
 */
interface Rand {
  int(min: number, max: number): number;
  bool(): boolean;
  pick<T>(xs: readonly T[]): T;
}

function rand(seed: number): Rand {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return { int, bool: () => next() < 0.5, pick: (xs) => xs[int(0, xs.length - 1)] };
}

function header(g: Rand, family: Family, b: Body | undefined, chain: string, builtin: boolean): string {
  const parts: string[] = [];
  const bang = () => (g.int(0, 3) === 0 ? '! ' : '');
  const addrs = family === 'ipv4' ? V4 : V6;
  // `! -s 0.0.0.0/0` loads with legacy but iptables-nft refuses it (RULE_APPEND: Invalid argument)
  const addr = (flag: string) => {
    const a = g.pick(addrs);
    return `${a.endsWith('/0') ? '' : bang()}-${flag} ${a}`;
  };
  if (!b?.has.s && g.bool()) parts.push(addr('s'));
  if (!b?.has.d && g.bool()) parts.push(addr('d'));
  if (!b?.has.i && (!builtin || IN_OK.has(chain)) && g.int(0, 2) === 0) parts.push(`${bang()}-i ${g.pick(IFACES)}`);
  if (!b?.has.o && (!builtin || OUT_OK.has(chain)) && g.int(0, 2) === 0) parts.push(`${bang()}-o ${g.pick(IFACES)}`);
  if (!b && g.bool()) {
    const p = g.pick(PROTOS[family]);
    parts.push(`${p === 'all' ? '' : bang()}-p ${p}`);
  }
  if (!b && family === 'ipv4' && g.int(0, 5) === 0) parts.push(`${bang()}-f`);
  return parts.join(' ');
}

/** A standard verdict, no target, or a jump or goto to one of `later` (chains after this one). */
function target(g: Rand, later: string[], builtin: boolean, table: TableName): string {
  // iptables refuses -j DROP in nat ("not intended for filtering")
  const choices = ['', '-j ACCEPT', table === 'nat' ? '-j ACCEPT' : '-j DROP', builtin ? '-j ACCEPT' : '-j RETURN'];
  if (later.length) choices.push('jump', 'jump', 'goto');
  const c = g.pick(choices);
  if (c === 'jump' || c === 'goto') return `${c === 'jump' ? '-j' : '-g'} ${g.pick(later)}`;
  return c;
}

/** A random ruleset of `family` as restore text covering all five tables. */
export function caseArbitrary(family: Family): fc.Arbitrary<Case> {
  const pool = bodies(family).bodies;
  const cache = new Map<string, Body[]>();
  const fitCache = (table: TableName, chain: string): Body[] => {
    const key = `${table} ${USER_NAMES.includes(chain) ? '' : chain}`;
    let v = cache.get(key);
    if (!v) cache.set(key, (v = pool.filter((b) => fits(b, table, chain))));
    return v;
  };
  return fc.integer().map((seed) => {
    const g = rand(seed);
    const out: string[] = [];
    for (const table of TABLE_NAMES) {
      out.push(`*${table}`);
      const builtins = BUILTIN_CHAINS[table];
      // chain order is the jump order: a chain may only jump to chains after it, so no loops
      const users = USER_NAMES.filter(() => g.int(0, USER_NAMES.length - 1) < 2).slice(0, 4);
      users.push('ISO');
      for (const c of builtins) out.push(`:${c} ${g.pick(['ACCEPT', 'DROP'])} [0:0]`);
      for (const c of users) out.push(`:${c} - [0:0]`);
      const chains = [...builtins.map((c) => ({ name: c, builtin: true, index: -1 })), ...users.map((c, k) => ({ name: c, builtin: false, index: k }))];
      for (const ch of chains) {
        const n = g.int(0, ch.name === 'ISO' ? 3 : 4);
        const fitting = fitCache(table, ch.name);
        for (let k = 0; k < n; k++) {
          const b = fitting.length && g.int(0, 2) > 0 ? fitting[g.int(0, fitting.length - 1)] : undefined;
          // ISO (last) is never jumped to; user chains jump only forward
          const later = users.slice(ch.builtin ? 0 : ch.index + 1, -1);
          const tg = b?.has.j ? '' : target(g, later, ch.builtin, table);
          const words = [header(g, family, b, ch.name, ch.builtin), b?.row.rule ?? '', tg].filter((w) => w.trim() !== '');
          out.push(`-A ${ch.name}${words.length ? ' ' + words.join(' ') : ''}`);
        }
      }
      out.push('COMMIT');
    }
    return { family, text: out.join('\n') + '\n' };
  });
}

/** Commands (ipset …) that the vector rows in use need before a restore. */
export function setupCommands(family: Family): string[][] {
  const seen = new Map<string, string[]>();
  for (const b of bodies(family).bodies) for (const c of b.row.setup ?? []) seen.set(c.join(' '), c);
  return [...seen.values()];
}
