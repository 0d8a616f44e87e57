/** `iptables -L` under every flag combination, kernel against podtables, both backends, v4 and v6. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, generatedRules, ours, rulesOf } from '../support/listings';
import { localNames } from '../../src/cli/convert';
import { parseRestore } from '../../src/syntax/restore';
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';
import { iptables, needKernel, restore, save, withNetns, type Backend } from '../support/kernel';

async function compareL(backend: Backend, family: Family, rules: string, tables: TableName[], chains: Partial<Record<TableName, string>>): Promise<string[]> {
  // without -n the kernel asks this machine's resolver files; podtables is given the same files
  const names = localNames();
  const diffs: string[] = [];
  await withNetns(async (ns) => {
    const r = await restore(ns, rules, backend, family, ['-c']);
    assert.equal(r.code, 0, r.stderr);
    // print what the kernel holds: ip6tables-nft-restore -c drops rule counters (iptables-nft keeps them)
    const rs = parseRestore(await save(ns, backend, family, ['-c']), { family }).ruleset;
    for (const t of tables)
      for (const a of argSets(t, chains[t]).filter((x) => x.includes('-L'))) {
        const kernel = await iptables(ns, backend, a, family);
        const mine = ours(rs, a, names);
        if (kernel !== mine) diffs.push(`iptables ${a.join(' ')}\n--- kernel\n${kernel}--- podtables\n${mine}`);
      }
  }, 'ptL');
  return diffs;
}

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
