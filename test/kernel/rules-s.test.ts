/** `iptables -S` and `-v -S` of the kernel against podtables' printS, both backends, v4 and v6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, fixtureRuleset, generatedRules, ours, rulesOf } from '../support/listings';
import { localNames } from '../../src/cli/convert';
import { parseRestore } from '../../src/syntax/restore';
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';
import { iptables, needKernel, restore, save, withNetns, type Backend } from '../support/kernel';

/** Load `rules` and compare every -S form of `tables` (and their chains) with podtables. */
async function compareS(backend: Backend, family: Family, rules: string, tables: TableName[], chains: string[]): Promise<string[]> {
  const names = localNames();
  const diffs: string[] = [];
  await withNetns(async (ns) => {
    const r = await restore(ns, rules, backend, family, ['-c']);
    assert.equal(r.code, 0, r.stderr);
    // print what the kernel holds: ip6tables-nft-restore -c drops rule counters (iptables-nft keeps them)
    const rs = parseRestore(await save(ns, backend, family, ['-c']), { family }).ruleset;
    for (const t of tables) {
      const sets = argSets(t).filter((a) => a.includes('-S'));
      const have = rs.tables.find((x) => x.name === t)?.chains.map((c) => c.name) ?? [];
      for (const c of chains.filter((n) => have.includes(n))) sets.push(['-t', t, '-S', c], ['-t', t, '-v', '-S', c]);
      for (const a of sets) {
        const kernel = await iptables(ns, backend, a, family);
        const mine = ours(rs, a, names);
        if (kernel !== mine) diffs.push(`iptables ${a.join(' ')}\n--- kernel\n${kernel}--- podtables\n${mine}`);
      }
    }
  }, 'ptS');
  return diffs;
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`-S of the fixtures is byte-identical to the kernel's (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const f of FIXTURES) {
      const rs = fixtureRuleset(f);
      const chains = rs.tables.flatMap((x) => x.chains.map((c) => c.name));
      assert.deepEqual(await compareS(backend, f.family, rulesOf(f), f.tables, [...new Set(chains)]), [], f.name);
    }
  });

  test(`-S of generated filter tables is byte-identical to the kernel's, v4 and v6 (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const family of ['ipv4', 'ipv6'] as Family[])
      for (const seed of [1, 2, 3]) {
        const diffs = await compareS(backend, family, generatedRules(family, seed), ['filter'], ['U1', 'A-LONGER-USER-CHAIN-NAME-28c']);
        assert.deepEqual(diffs, [], `${family} seed ${seed}`);
      }
  });
}
