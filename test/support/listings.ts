/**
 * The -S and -L fixtures: rulesets in test/fixtures/listings/, the iptables arguments each is
 * listed with, and podtables' answer for the same arguments. `capture()` records the kernel's
 * answers (and the names it resolved with) into NAME.kernel.json for the pure tests; run it as
 * `npx tsx test/support/listings.ts` as root after changing a fixture.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Family } from '../../src/model/addr';
import type { NameTables } from '../../src/extensions/types';
import { isBuiltin, type Ruleset, type TableName } from '../../src/model/ruleset';
import { parseRestore } from '../../src/syntax/restore';
import { listRuleset } from '../../src/syntax/list';
import { printS } from '../../src/syntax/rules-s';
import assert from 'node:assert/strict';
import { localNames } from '../../src/cli/convert';
import { iptables, restore, save, withNetns, type Backend } from './kernel';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'listings');

export interface Fixture {
  name: string;
  family: Family;
  tables: TableName[];
  /** A user chain to list alone, per table. */
  chains: Partial<Record<TableName, string>>;
}

/** Where each fixture came from: written for these tests to exercise widths, negations and counters. */
export const FIXTURES: Fixture[] = [
  { name: 'filter4', family: 'ipv4', tables: ['filter'], chains: { filter: 'averyveryverylongchainname-x' } },
  { name: 'filter6', family: 'ipv6', tables: ['filter'], chains: { filter: 'U' } },
  { name: 'nat4', family: 'ipv4', tables: ['nat'], chains: { nat: 'PROXY_INIT_REDIRECT' } },
  { name: 'tables4', family: 'ipv4', tables: ['raw', 'mangle', 'security'], chains: { mangle: 'MARKS', raw: 'OUTPUT' } },
];

export const rulesOf = (f: Fixture): string => readFileSync(join(FIXTURE_DIR, `${f.name}.rules`), 'utf8');

/** Every `-L` flag combination, then -S forms, for one table (and its chain). */
export function argSets(table: TableName, chain?: string): string[][] {
  const out: string[][] = [];
  for (let bits = 0; bits < 16; bits++) {
    const a = ['-t', table, '-L'];
    if (bits & 1) a.push('-n');
    if (bits & 2) a.push('-v');
    if (bits & 4) a.push('-x');
    if (bits & 8) a.push('--line-numbers');
    out.push(a);
  }
  out.push(['-t', table, '-S'], ['-t', table, '-v', '-S']);
  if (chain) out.push(['-t', table, '-S', chain], ['-t', table, '-L', chain, '-n', '-v'], ['-t', table, '-L', chain]);
  return out;
}

/** podtables' output for the same iptables arguments. */
export function ours(rs: Ruleset, args: string[], names: NameTables): string {
  const table = args[args.indexOf('-t') + 1] as TableName;
  const s = args.indexOf('-S'), l = args.indexOf('-L');
  const at = s >= 0 ? s : l;
  const chain = args[at + 1] && !args[at + 1].startsWith('-') ? args[at + 1] : undefined;
  if (s >= 0) return printS(rs, { table, chain, counters: args.includes('-v') });
  return listRuleset(rs, { table, chain, numeric: args.includes('-n'), verbose: args.includes('-v'), exact: args.includes('-x'), lineNumbers: args.includes('--line-numbers'), names });
}

/** The fixture's ruleset as podtables reads it. */
export function fixtureRuleset(f: Fixture): Ruleset {
  const r = parseRestore(rulesOf(f), { family: f.family });
  if (r.issues.some((i) => i.severity === 'error')) throw new Error(`${f.name}: ${r.issues.map((i) => i.message).join('; ')}`);
  return r.ruleset;
}

/** What capture() recorded: the kernel's outputs and the names it resolved with. */
export interface Captured {
  outputs: Record<string, string>;
  names: { services: [string, string][]; hosts: [string, string][]; users: [string, string][]; groups: [string, string][] };
}

export function loadCaptured(f: Fixture): Captured | undefined {
  const p = join(FIXTURE_DIR, `${f.name}.kernel.json`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Captured) : undefined;
}

export const namesOf = (c: Captured): NameTables => ({
  services: new Map(c.names.services), hosts: new Map(c.names.hosts), users: new Map(c.names.users), groups: new Map(c.names.groups),
});

/** User chains listed by a fixture (for tests that need to know which chains exist). */
export const userChains = (rs: Ruleset, t: TableName): string[] =>
  rs.tables.find((x) => x.name === t)?.chains.filter((c) => !isBuiltin(t, c.name)).map((c) => c.name) ?? [];

async function capture(): Promise<void> {
  const { withNetns, restore, iptables } = await import('./kernel');
  const { localNames } = await import('../../src/cli/convert');
  const names = localNames();
  for (const f of FIXTURES) {
    const outputs: Record<string, string> = {};
    await withNetns(async (ns) => {
      const r = await restore(ns, rulesOf(f), 'legacy', f.family, ['-c']);
      if (r.code !== 0) throw new Error(`${f.name}: ${r.stderr}`);
      for (const t of f.tables) for (const a of argSets(t, f.chains[t])) outputs[a.join(' ')] = await iptables(ns, 'legacy', a, f.family);
    });
    // only the names the outputs need, so the fixture does not carry this machine's whole /etc
    const used = (m?: Map<string, string>) => [...(m ?? [])].filter(([, v]) => Object.values(outputs).some((o) => o.includes(v)));
    const c: Captured = { outputs, names: { services: used(names.services), hosts: used(names.hosts), users: used(names.users), groups: used(names.groups) } };
    writeFileSync(join(FIXTURE_DIR, `${f.name}.kernel.json`), JSON.stringify(c, null, 1) + '\n');
    console.log(`${f.name}: ${Object.keys(outputs).length} outputs`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  capture().catch((e) => {
    console.error(e);
    process.exit(1);
  });

/**
 * A varied filter table from a seed: addresses of every length (negated or not), interfaces up
 * to 15 characters, protocols by name and number, ports, multiport, comments, fragments, jumps,
 * gotos, rules without target and counters from 0 to 10^12. Reproducible, so a failure names its seed.
 */
export function generatedRules(family: Family, seed: number, count = 40): string {
  let x = seed >>> 0 || 1;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const pick = <T>(a: readonly T[]): T => a[rnd(a.length)];
  const neg = () => (rnd(4) === 0 ? '! ' : '');
  const big = () => pick([0, 1, 99999, 100000, 123456789, 98765432101, 999999999999]);
  const addr = () => {
    if (family === 'ipv4') return `${rnd(224)}.${rnd(256)}.${rnd(256)}.${rnd(256)}/${pick([8, 16, 24, 32, 1, 27])}`;
    const w = Array.from({ length: 8 }, () => (rnd(3) === 0 ? 0 : rnd(65536)).toString(16));
    return `${w.join(':')}/${pick([16, 32, 64, 128, 48])}`;
  };
  const lines = ['*filter', `:INPUT ${pick(['ACCEPT', 'DROP'])} [${big()}:${big()}]`, `:FORWARD ACCEPT [${big()}:${big()}]`, `:OUTPUT ACCEPT [0:0]`,
    ':U1 - [0:0]', ':A-LONGER-USER-CHAIN-NAME-28c - [0:0]'];
  for (let k = 0; k < count; k++) {
    const chain = pick(['INPUT', 'FORWARD', 'OUTPUT', 'U1', 'A-LONGER-USER-CHAIN-NAME-28c']);
    const r: string[] = [];
    if (rnd(2)) r.push(`${neg()}-s ${addr()}`);
    if (rnd(2)) r.push(`${neg()}-d ${addr()}`);
    if (chain !== 'OUTPUT' && chain !== 'U1' && rnd(3) === 0) r.push(`${neg()}-i ${pick(['eth0', 'veth+', 'averylongifnam0', 'lo'])}`);
    if (chain !== 'INPUT' && chain !== 'U1' && rnd(3) === 0) r.push(`${neg()}-o ${pick(['eth1', 'cni0', 'br-0123456789ab'])}`);
    const proto = pick(['', 'tcp', 'udp', 'tcp', family === 'ipv4' ? 'icmp' : 'ipv6-icmp', '47', '132']);
    const pneg = proto && proto !== 'tcp' && proto !== 'udp' ? neg() : '';
    if (proto) r.push(`${pneg}-p ${proto}`);
    if (family === 'ipv4' && (proto === '' || pneg) && rnd(5) === 0) r.push(`${neg()}-f`);
    if (proto === 'tcp' || proto === 'udp') {
      if (rnd(2)) r.push(`-m ${proto} ${neg()}--dport ${pick(['80', '22', '1:1024', '53', '8080:8090', '65535'])}`);
      else if (rnd(2)) r.push(`-m multiport ${neg()}--${pick(['dports', 'sports', 'ports'])} ${pick(['22,80,443', '53', '1000:2000,3000'])}`);
    }
    if (rnd(4) === 0) r.push(`-m comment --comment ${pick(['"a comment"', 'plain', '"more  spaces here"'])}`);
    const target = pick(['-j ACCEPT', '-j DROP', '-j RETURN', '', chain === 'U1' ? '-j RETURN' : '-j U1', chain === 'U1' ? '' : '-g U1']);
    if (target) r.push(target);
    lines.push(`[${big()}:${big()}] -A ${chain}${r.length ? ' ' + r.join(' ') : ''}`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * The ruleset as a listing without -v shows it: no interfaces, no counters; with `ipv6Anywhere`,
 * an IPv6 `::/N` address dropped, since ip6tables -L prints it as "anywhere" whatever the mask.
 */
export function withoutVerbose(rs: Ruleset, o: { ipv6Anywhere?: boolean } = {}): Ruleset {
  const anywhere = (a: { value: { addr: bigint } } | undefined) => !!o.ipv6Anywhere && rs.family === 'ipv6' && !!a && a.value.addr === 0n;
  return {
    ...rs,
    tables: rs.tables.map((t) => ({
      ...t,
      chains: t.chains.map((c) => ({
        ...c,
        counters: c.counters && { packets: 0, bytes: 0 },
        rules: c.rules.map(({ inInterface: _i, outInterface: _o, counters: _c, ...r }) => {
          const out = { ...r };
          if (anywhere(out.source)) delete out.source;
          if (anywhere(out.destination)) delete out.destination;
          return out;
        }),
      })),
    })),
  };
}

/**
 * Load `rules` (with counters) into a fresh namespace and run `iptables ARGS` for each argument set
 * `argsFor` gives, against podtables' own output for the ruleset the kernel holds; the differences.
 */
export async function compareWithKernel(backend: Backend, family: Family, rules: string, prefix: string, argsFor: (rs: Ruleset) => string[][]): Promise<string[]> {
  // without -n the kernel asks this machine's resolver files; podtables is given the same files
  const names = localNames();
  const diffs: string[] = [];
  await withNetns(async (ns) => {
    const r = await restore(ns, rules, backend, family, ['-c']);
    assert.equal(r.code, 0, r.stderr);
    // print what the kernel holds: ip6tables-nft-restore -c drops rule counters (iptables-nft keeps them)
    const rs = parseRestore(await save(ns, backend, family, ['-c']), { family }).ruleset;
    for (const a of argsFor(rs)) {
      const kernel = await iptables(ns, backend, a, family);
      const mine = ours(rs, a, names);
      if (kernel !== mine) diffs.push(`iptables ${a.join(' ')}\n--- kernel\n${kernel}--- podtables\n${mine}`);
    }
  }, prefix);
  return diffs;
}
