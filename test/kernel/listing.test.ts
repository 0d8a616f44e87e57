/**
 * A listing made by the kernel imports back to what the kernel holds, wherever the listing says
 * enough: `-L -n -v -x` says everything these rulesets use (counters included); `-L` without -n
 * and -v says all but interfaces and counters, and names resolve through this machine's files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, FIXTURE_DIR, generatedRules, rulesOf, withoutVerbose } from '../support/listings';
import { getMatch, getTarget } from '../../src/extensions/index';
import { localNames } from '../../src/cli/convert';
import { parseListing } from '../../src/syntax/listing';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';
import { iptables, needKernel, restore, save, withNetns, type Backend } from '../support/kernel';

async function roundTrip(backend: Backend, family: Family, rules: string, tables: TableName[], o = { named: true }): Promise<string[]> {
  const names = localNames();
  const diffs: string[] = [];
  await withNetns(async (ns) => {
    const r = await restore(ns, rules, backend, family, ['-c']);
    assert.equal(r.code, 0, r.stderr);
    for (const t of tables) {
      const kernelSave = await save(ns, backend, family, ['-c', '-t', t]);
      for (const flags of [['-n', '-v', '-x'], ['-n', '-v', '-x', '--line-numbers']]) {
        const listing = await iptables(ns, backend, ['-t', t, '-L', ...flags], family);
        const imp = parseListing(listing, { table: t, family });
        if (imp.issues.length) diffs.push(`-t ${t} -L ${flags.join(' ')}: issues ${JSON.stringify(imp.issues)}`);
        const mine = saveRuleset(imp.ruleset, { counters: true });
        if (mine !== kernelSave) diffs.push(`-t ${t} -L ${flags.join(' ')}\n--- kernel save\n${kernelSave}--- imported\n${mine}`);
      }
      if (!o.named) continue;
      const named = await iptables(ns, backend, ['-t', t, '-L'], family);
      const imp = parseListing(named, { table: t, family, names });
      const codes = [...new Set(imp.issues.map((i) => i.code))];
      if (codes.some((c) => c !== 'listing-no-interfaces')) diffs.push(`-t ${t} -L: unexpected issues ${JSON.stringify(imp.issues)}`);
      const want = saveRuleset(withoutVerbose(parseRestore(kernelSave, { family }).ruleset, { ipv6Anywhere: true }));
      const mine = saveRuleset(imp.ruleset);
      if (mine !== want) diffs.push(`-t ${t} -L\n--- expected\n${want}--- imported\n${mine}`);
    }
  }, 'ptI');
  return diffs;
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`kernel listings of the fixtures import back to the kernel's ruleset (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const f of FIXTURES) assert.deepEqual(await roundTrip(backend, f.family, rulesOf(f), f.tables), [], f.name);
  });

  test(`kernel listings of generated tables import back to the kernel's ruleset, v4 and v6 (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const family of ['ipv4', 'ipv6'] as Family[])
      for (const seed of [5, 6, 7]) assert.deepEqual(await roundTrip(backend, family, generatedRules(family, seed), ['filter']), [], `${family} seed ${seed}`);
  });
}

/**
 * The rules of an extensions fixture that podtables models today: every `-m`/`-j` extension
 * registered, and the line accepted by podtables' own reader. Others are left out (and counted),
 * so the test grows with the registry.
 */
function modelledOnly(text: string, family: Family): { text: string; left: number } {
  let left = 0;
  let header: string[] = [];
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) header = [line];
    else if (line.startsWith(':')) header.push(line);
    if (!line.startsWith('-A')) {
      out.push(line);
      continue;
    }
    const names = [...line.matchAll(/ -m (\S+)/g)].map((m) => getMatch(m[1]));
    const j = / -j ([A-Z]+)(?:\s|$)/.exec(line);
    const target = j && !['ACCEPT', 'DROP', 'RETURN', 'QUEUE'].includes(j[1]) ? getTarget(j[1]) : true;
    const alone = parseRestore([...header, line, 'COMMIT', ''].join('\n'), { family });
    if (names.every(Boolean) && target && !alone.issues.some((i) => i.severity === 'error')) out.push(line);
    else left++;
  }
  return { text: out.join('\n'), left };
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`kernel listings of every registered extension's rules import back to the kernel's ruleset (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    for (const [name, family] of [['extensions4', 'ipv4'], ['extensions6', 'ipv6']] as [string, Family][]) {
      const { text, left } = modelledOnly(readFileSync(join(FIXTURE_DIR, `${name}.rules`), 'utf8'), family);
      t.diagnostic(`${name}: ${left} rules left out (extension not registered or not read by podtables)`);
      const tables = [...text.matchAll(/^\*(\w+)/gm)].map((m) => m[1] as TableName);
      assert.deepEqual(await roundTrip(backend, family, text, tables, { named: false }), [], name);
    }
  });
}
