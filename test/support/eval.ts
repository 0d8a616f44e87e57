/** Packets, evaluation contexts and rules for the tests that call extensions' match and target directly. */
import assert from 'node:assert/strict';
import { parseIP, type Family } from '../../src/model/addr';
import type { Conntrack, Packet } from '../../src/model/packet';
import { BUILTIN_CHAINS, type Rule, type TableName } from '../../src/model/ruleset';
import type { EvalContext, MatchResult } from '../../src/extensions/types';
import { getMatch } from '../../src/extensions/index';
import { parseRestore } from '../../src/syntax/restore';

/** An address's value. */
export const ip = (s: string): bigint => parseIP(s)!.value;

/** A new flow's conntrack entry, with overrides. */
export function testCt(over: Partial<Conntrack> = {}): Conntrack {
  return { state: 'NEW', reply: false, mark: 0, status: new Set(), natted: { src: false, dst: false }, zone: 0, ...over };
}

/** An echo request over lo (what the kernel runs in these tests used), with overrides. */
export function testPacket(over: Partial<Packet> = {}): Packet {
  return {
    family: 'ipv4', protocol: 1, src: ip('127.0.0.1'), dst: ip('127.0.0.1'), sport: 0, dport: 0,
    tcpFlags: 0, icmpType: 8, icmpCode: 0, inInterface: 'lo', mark: 0, length: 84, ttl: 64, tos: 0,
    fragment: false, ct: testCt(), ...over,
  };
}

/** A context with real per-key state; everything else neutral unless overridden. */
export function testContext(over: Partial<EvalContext> & { now?: number } = {}): EvalContext & { now: number } {
  const store = new Map<object, unknown>();
  return {
    now: 0,
    family: 'ipv4',
    table: 'filter',
    hook: 'INPUT',
    addrType: () => new Set(['UNICAST']),
    chance: () => true,
    state<T>(k: object, init: () => T): T {
      if (!store.has(k)) store.set(k, init());
      return store.get(k) as T;
    },
    nat: () => {},
    tproxy: () => false,
    note: () => {},
    ...over,
  };
}

/** The rule `-A VEC <spec>` of `table`, read as iptables-restore input (errors fail the test). */
export function testRule(spec: string, table: TableName = 'filter', family: Family = 'ipv4'): Rule {
  const chains = BUILTIN_CHAINS[table].map((c) => `:${c} ACCEPT [0:0]`).join('\n');
  const res = parseRestore(`*${table}\n${chains}\n:VEC - [0:0]\n-A VEC ${spec}\nCOMMIT\n`, { family });
  assert.deepEqual(res.issues.filter((i) => i.severity === 'error'), [], spec);
  return res.ruleset.tables[0].chains.find((c) => c.name === 'VEC')!.rules[0];
}

/** The matches of `-A VEC <spec>` as one evaluator: true when all match, else the first other answer. */
export function testMatcher(spec: string, family: Family = 'ipv4', defaultCtx: () => EvalContext = testContext) {
  const r = testRule(spec, 'filter', family);
  return (p: Packet, ctx: EvalContext = defaultCtx()): MatchResult => {
    for (const m of r.matches) {
      if (m.kind !== 'match') throw new Error(`${m.name} is not modelled`);
      const out = getMatch(m.name)!.match!(m.info, p, ctx);
      if (out !== true) return out;
    }
    return true;
  };
}
