/** `iptables -L` under every flag combination, kernel against podtables, both backends, v4 and v6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, compareWithKernel, generatedRules, rulesOf } from '../support/listings';
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';
import { needKernel, type Backend } from '../support/kernel';

/** Load `rules` and compare every -L form of `tables` (and the named chains) with podtables. */
const compareL = (backend: Backend, family: Family, rules: string, tables: TableName[], chains: Partial<Record<TableName, string>>) =>
  compareWithKernel(backend, family, rules, 'ptL', () => tables.flatMap((t) => argSets(t, chains[t]).filter((x) => x.includes('-L'))));

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`-L of the fixtures is byte-identical to the kernel's under all 16 flag combinations (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const f of FIXTURES) assert.deepEqual(await compareL(backend, f.family, rulesOf(f), f.tables, f.chains), [], f.name);
  });

  test(`-L of generated filter tables is byte-identical to the kernel's, v4 and v6 (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const family of ['ipv4', 'ipv6'] as Family[])
      for (const seed of [1, 2, 3, 4]) {
        const diffs = await compareL(backend, family, generatedRules(family, seed), ['filter'], { filter: 'A-LONGER-USER-CHAIN-NAME-28c' });
        assert.deepEqual(diffs, [], `${family} seed ${seed}`);
      }
  });
}
