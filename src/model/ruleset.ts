/**
 * The ruleset model: tables → chains → rules. Plain data: no methods, so that it serialises to
 * JSON (see docs/json-schema.md) and crosses into the browser unchanged.
 */
import type { Cidr, Family } from './addr';

/** The five iptables tables. */
export type TableName = 'raw' | 'mangle' | 'nat' | 'filter' | 'security';
export const TABLE_NAMES: readonly TableName[] = ['raw', 'mangle', 'nat', 'filter', 'security'];

/** Netfilter hooks, which are also the names of the built-in chains. */
export type Hook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

/** Built-in chains of each table, in the kernel's hook order (iptables-save prints them so). */
export const BUILTIN_CHAINS: Record<TableName, readonly Hook[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** Packet and byte counters. */
export interface Counters {
  packets: number;
  bytes: number;
}

/** A value that `!` may precede. */
export interface Negatable<T> {
  value: T;
  invert: boolean;
}

/** One match of a rule: a known extension's parsed data, or an unknown one kept verbatim. */
export type MatchInstance =
  /** A match podtables models; `info` is the extension's own structure. */
  | { kind: 'match'; name: string; info: unknown }
  /** A match podtables does not know: its tokens after `-m name`, printed back exactly. */
  | { kind: 'unknown'; name: string; tokens: string[] };

/** What a rule does when it matches. */
export type Target =
  /** ACCEPT, DROP, RETURN or QUEUE: the kernel's built-in verdicts. */
  | { kind: 'standard'; verdict: 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE' }
  /** `-j CHAIN` to a user-defined chain. */
  | { kind: 'jump'; chain: string }
  /** `-g CHAIN`: like a jump, but RETURN goes back past this chain. */
  | { kind: 'goto'; chain: string }
  /** A target extension podtables models (DNAT, MARK, LOG, …). */
  | { kind: 'extension'; name: string; info: unknown }
  /** A target podtables does not know, kept verbatim. */
  | { kind: 'unknown'; name: string; tokens: string[] };

/** One rule, as `-A chain …` describes it. */
export interface Rule {
  /** Protocol as written (`tcp`, `6`, `all`); absent for any protocol. */
  protocol?: Negatable<string>;
  source?: Negatable<Cidr>;
  destination?: Negatable<Cidr>;
  /** Interface names; a trailing `+` is a wildcard. */
  inInterface?: Negatable<string>;
  outInterface?: Negatable<string>;
  /** `-f` (second and later fragments); IPv4 only. */
  fragment?: { invert: boolean };
  matches: MatchInstance[];
  /** Absent when the rule has no target (it only counts). */
  target?: Target;
  counters?: Counters;
  /** Where the rule came from in the input, for messages (1-based). */
  line?: number;
}

/** A chain: built-in ones have a policy; user-defined ones do not. */
export interface Chain {
  name: string;
  /** ACCEPT or DROP for built-in chains; absent for user-defined chains. */
  policy?: 'ACCEPT' | 'DROP';
  counters?: Counters;
  rules: Rule[];
}

/** One table with its chains, built-in ones first in hook order. */
export interface Table {
  name: TableName;
  chains: Chain[];
}

/** A whole ruleset of one family, tables in the order they were given. */
export interface Ruleset {
  family: Family;
  tables: Table[];
}

/** Whether `name` is a built-in chain of `table`. */
export function isBuiltin(table: TableName, name: string): boolean {
  return (BUILTIN_CHAINS[table] as readonly string[]).includes(name);
}

/** A table with its built-in chains, policies ACCEPT and zero counters, as the kernel creates it. */
export function emptyTable(name: TableName): Table {
  return {
    name,
    chains: BUILTIN_CHAINS[name].map((c) => ({ name: c, policy: 'ACCEPT' as const, counters: { packets: 0, bytes: 0 }, rules: [] })),
  };
}

/** Find a table by name. */
export function getTable(rs: Ruleset, name: TableName): Table | undefined {
  return rs.tables.find((t) => t.name === name);
}

/** Find a chain by name. */
export function getChain(t: Table, name: string): Chain | undefined {
  return t.chains.find((c) => c.name === name);
}
