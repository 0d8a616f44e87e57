/** `iptables -S` and `-v -S` of the kernel against podtables' printS, both backends, v4 and v6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, compareWithKernel, fixtureRuleset, generatedRules, rulesOf } from '../support/listings';
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';
import { needKernel, type Backend } from '../support/kernel';

/** Load `rules` and compare every -S form of `tables` (and their chains) with podtables. */
const compareS = (backend: Backend, family: Family, rules: string, tables: TableName[], chains: string[]) =>
  compareWithKernel(backend, family, rules, 'ptS', (rs) =>
    tables.flatMap((t) => {
      const sets = argSets(t).filter((a) => a.includes('-S'));
      const have = rs.tables.find((x) => x.name === t)?.chains.map((c) => c.name) ?? [];
      for (const c of chains.filter((n) => have.includes(n))) sets.push(['-t', t, '-S', c], ['-t', t, '-v', '-S', c]);
      return sets;
    }));

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
