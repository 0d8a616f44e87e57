/**
 * The shape every extension file satisfies: iptables' libxt_* (options, parse, print, save) joined
 * with the kernel's xt_* (check, match or target) in one object.
 */
import type { Family } from '../model/addr';
import type { Hook, TableName } from '../model/ruleset';
import type { Packet } from '../model/packet';

/** One option of an extension, as its options table declares it. */
export interface OptionSpec {
  /** Long name without dashes (`dport`). */
  name: string;
  /** Other spellings accepted on input (`destination-port`). */
  aliases?: string[];
  /** How many argument tokens follow the option (0 for flags, 2 for `--tcp-flags MASK COMP`). */
  args: number;
  /** Whether `!` may precede it. */
  invert?: boolean;
  /** Whether the option may be given more than once (e.g. `--tcp-option`, `--match-set` is not). */
  repeat?: boolean;
}

/** An option as it appeared in the input. */
export interface GivenOption {
  /** The option's canonical name from the spec (aliases resolved). */
  name: string;
  invert: boolean;
  args: string[];
  /** Index of the option token in the rule's argv, for error columns. */
  token: number;
}

/** What an extension's parser may ask about the rule it belongs to. */
export interface ParseContext {
  family: Family;
  table: TableName;
  /** The rule's `-p` value (lower-case name or number), if any, and whether it is negated. */
  protocol?: { value: string; invert: boolean };
  /** User, group and service names the host knows, for options that take names (owner, ports). */
  names?: NameTables;
}

/** Printing context shared by save and -L forms. */
export interface PrintContext {
  family: Family;
  /** `-L -n`: numbers, not names. */
  numeric: boolean;
  /** Name resolution tables injected by the caller (services, hosts); empty means none known. */
  names?: NameTables;
  /** The rule's `-p` value, for printers whose text depends on it. */
  protocol?: { value: string; invert: boolean };
}

/** Lookup tables for `-L` without `-n` (from /etc/services, /etc/hosts), injected by the host side. */
export interface NameTables {
  /** `port/proto` → service name, e.g. `80/tcp` → `http`. */
  services?: Map<string, string>;
  /** uid → user name and gid → group name (owner match). */
  users?: Map<string, string>;
  groups?: Map<string, string>;
  /** Address text → host name. */
  hosts?: Map<string, string>;
}

/** Why a match could not be decided: the engine applies `--assume` and records the reason. */
export interface Undecided {
  undecided: string;
}

/** What a match returns for a packet. */
export type MatchResult = boolean | Undecided;

/** A rule's outcome, as the kernel's ipt_do_table sees it. */
export type RuleResult =
  /** Not terminal: go on with the next rule (MARK, LOG, CONNMARK, TRACE, …). */
  | { verdict: 'continue' }
  /** Terminal ACCEPT for this table at this hook (also NAT targets after they rewrote). */
  | { verdict: 'accept' }
  | { verdict: 'drop' }
  /** Leave the current chain. */
  | { verdict: 'return' }
  | { verdict: 'jump'; chain: string }
  | { verdict: 'goto'; chain: string }
  /** REJECT: dropped, with an error sent back (`with` as --reject-with spells it). */
  | { verdict: 'reject'; with: string }
  /** QUEUE / NFQUEUE: handed to userspace. */
  | { verdict: 'queue'; queue: number; bypass?: boolean };

/** A NAT mapping a target asks for; the engine applies it to the flow. */
export interface NatRequest {
  /** dst: DNAT, REDIRECT, TPROXY-less; src: SNAT, MASQUERADE. */
  side: 'src' | 'dst';
  /** Address range, or `undefined` to keep the address (REDIRECT/MASQUERADE pick it from the host). */
  addrMin?: bigint;
  addrMax?: bigint;
  /** Where the address comes from when not given. */
  pick?: 'redirect' | 'masquerade';
  portMin?: number;
  portMax?: number;
  random?: boolean;
  persistent?: boolean;
}

/** What the traversal engine offers to matches and targets while a packet is evaluated. */
export interface EvalContext {
  family: Family;
  table: TableName;
  hook: Hook;
  /** The kernel's address type of an address (`LOCAL`, `UNICAST`, `BROADCAST`, …), as addrtype sees it. */
  addrType(addr: bigint, iface?: string): Set<string>;
  /** Take a random branch with probability p; the engine records it and can enumerate both. */
  chance(p: number, label: string): boolean;
  /** Per-rule state (nth counters, recent lists, limit buckets), keyed by the caller. */
  state<T>(key: object, init: () => T): T;
  /** Ask for a NAT mapping (only valid in the nat table). */
  nat(req: NatRequest): void;
  /** TPROXY: divert to a local socket; returns whether one was found. */
  tproxy(addr: bigint | undefined, port: number, mark?: { value: number; mask: number }): boolean;
  /** Leave a note on the current step (LOG text, assumptions). */
  note(text: string): void;
  /** The evaluation clock in milliseconds, for matches that keep time (limit, recent); 0 when absent. */
  now?: number;
}

/** Fields every extension has. */
interface ExtensionBase<I> {
  name: string;
  /** Families it exists for; both when absent. */
  family?: Family;
  /** Tables it may be used in; any when absent. */
  tables?: readonly TableName[];
  /** The `-p` the rule must have (not negated), as the kernel's checkentry demands; any when absent. */
  protocol?: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'ipv6-icmp' | 'udplite' | 'dccp';
  /** Hooks it may be used from; any when absent (checked through user chains too). */
  hooks?: readonly Hook[];
  /** Hooks allowed for these options, where the kernel's check depends on them; `hooks` otherwise. */
  hooksFor?(info: I): readonly Hook[] | undefined;
  options: readonly OptionSpec[];
  /** Build the structure from the given options; throw ExtensionError for bad input. */
  parse(opts: GivenOption[], ctx: ParseContext): I;
  /** The options as iptables-save prints them, after `-m name ` or `-j NAME ` (may be empty). */
  save(info: I, ctx: PrintContext): string;
  /** The text `iptables -L` prints for it in the options column (may be empty). */
  list(info: I, ctx: PrintContext): string;
}

/** A match extension (`-m name`). */
export interface MatchExtension<I = any> extends ExtensionBase<I> {
  kind: 'match';
  /** Whether `-m name` itself may be negated... none in 1.8.9; kept for completeness. */
  match?(info: I, packet: Packet, ctx: EvalContext): MatchResult;
}

/** A target extension (`-j NAME`). */
export interface TargetExtension<I = any> extends ExtensionBase<I> {
  kind: 'target';
  /** The name `iptables -L` shows in the target column, when the kernel knows the target by another (NOTRACK is CT). */
  listName?: string;
  target?(info: I, packet: Packet, ctx: EvalContext): RuleResult;
}

export type Extension = MatchExtension | TargetExtension;

/** A user error inside an extension's options; `token` indexes the offending option when known. */
export class ExtensionError extends Error {
  constructor(message: string, public token?: number) {
    super(message);
  }
}
