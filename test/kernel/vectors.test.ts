/** Every extension vector row, replayed against the kernel's iptables-save and -L (both backends). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_VECTORS } from '../vectors/index';
import { expectedSave, listedOptions, rowChain, rowFamily, rowRestore, rowTable } from '../support/vectors';
import { systemNames } from '../../src/kernel/names';
import { parseRestore } from '../../src/syntax/restore';
import { listRuleOptions } from '../../src/syntax/list';
import { iptables, needKernel, restore, save, withNetns, type Backend } from '../support/kernel';
import { inNetns } from '../../src/kernel/netns';

/** Run a row's setup commands in the namespace; the first failure's text, or undefined. */
async function runSetup(ns: string, setup: string[][] | undefined): Promise<string | undefined> {
  for (const [cmd, ...args] of setup ?? []) {
    // a missing binary (ipset) rejects at spawn: say which Debian package provides it
    const r = await inNetns(ns, cmd, args, { timeoutMs: 30_000 }).catch((e: Error) => ({ code: -1, stderr: `${e.message} (apt-get install ${cmd})` }));
    if (r.code !== 0) return `${[cmd, ...args].join(' ')}: ${r.stderr.trim()}`;
  }
  return undefined;
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`extension vectors agree with the kernel (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      const failures: string[] = [];
      for (const set of ALL_VECTORS) {
        for (const row of set.rows) {
          const fam = rowFamily(row);
          const setupFailed = await runSetup(ns, row.setup);
          if (setupFailed) {
            failures.push(`${set.extension}: setup for ${row.rule} failed: ${setupFailed}`);
            continue;
          }
          const r = await restore(ns, rowRestore(row), backend, fam);
          if (!row.ok) {
            if (r.code === 0) failures.push(`${set.extension}: kernel accepted ${row.rule}`);
            continue;
          }
          if (r.code !== 0) {
            failures.push(`${set.extension}: kernel refused ${row.rule}: ${r.stderr.trim()}`);
            continue;
          }
          const dump = await save(ns, backend, fam, ['-t', rowTable(row)]);
          const line = dump.split('\n').find((l) => l.startsWith(`-A ${rowChain(row)} `) || l === `-A ${rowChain(row)}`);
          if (line !== expectedSave(row)) failures.push(`${set.extension}: save\n  kernel: ${line}\n  row:    ${expectedSave(row)}`);
          if (row.list !== undefined) {
            const l = listedOptions(await iptables(ns, backend, ['-t', rowTable(row), '-L', rowChain(row), '-n'], fam));
            if (l !== row.list) failures.push(`${set.extension}: -L -n of ${row.rule}\n  kernel: ${JSON.stringify(l)}\n  row:    ${JSON.stringify(row.list)}`);
            const ln = listedOptions(await iptables(ns, backend, ['-t', rowTable(row), '-L', rowChain(row)], fam));
            // without -n, names come from this machine's /etc files: compare with our printer fed the same tables
            const ours = parseRestore(rowRestore(row), { family: fam }).ruleset.tables[0].chains.find((c) => c.name === rowChain(row))!.rules[0];
            const want = listRuleOptions(ours, { family: fam, numeric: false, names: systemNames() });
            if (ln !== want) failures.push(`${set.extension}: -L of ${row.rule}\n  kernel: ${JSON.stringify(ln)}\n  row:    ${JSON.stringify(want)}`);
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  });
}
