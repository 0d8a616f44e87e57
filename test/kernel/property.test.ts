/**
 * Random rulesets (test/support/rulegen.ts: all tables, user chains with jumps and gotos, negations,
 * interfaces, v4 and v6, and rule text from every registered extension's vector rows) loaded into
 * the kernel with both backends: podtables must accept exactly what the kernel accepts and print
 * the same iptables-save (every table), and the same `-S`, `-L -n` or `-L -n -v` text (one listing
 * of one table per case, in turn). PROPERTY_RUNS cases per family
 * (default 260, so 520 per run), PROPERTY_SEED to replay a failure; the seed is printed.
 */
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import { inNetnsOk } from '../../src/kernel/netns';
import { TABLE_NAMES, type Ruleset, type TableName } from '../../src/model/ruleset';
import type { Family } from '../../src/model/addr';
import { iptables, needKernel, restore, save, withNetns, type Backend } from '../support/kernel';
import { bodies, caseArbitrary, setupCommands, type Case } from '../support/rulegen';
import { firstDifference, inOrder } from '../support/corpus';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 260);
const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 2 ** 31);
// namespaces in parallel: most of a case's time is the kernel committing tables, not CPU
const WORKERS = Number(process.env.PROPERTY_WORKERS ?? 12);

/**
 * Known differences in printers this test does not own, each with its reason: a difference is
 * tolerated (and reported) only when its form matches and both lines match the patterns.
 */
interface KnownDifference {
  form: '-S' | '-L' | 'save';
  podtables: string;
  kernel: string;
  reason: string;
}
const KNOWN: KnownDifference[] = JSON.parse(readFileSync(new URL('../expectations/property.json', import.meta.url), 'utf8'));

type PrintS = (rs: Ruleset, o: { table: TableName }) => string;
type ListRuleset = (rs: Ruleset, o: { table: TableName; numeric: boolean; verbose: boolean; exact: boolean; lineNumbers: boolean }) => string;

/** The -S and -L printers, when the modules that hold them exist in this tree. */
async function printers(): Promise<{ printS?: PrintS; listRuleset?: ListRuleset }> {
  const s = await import('../../src/syntax/rules-s').catch(() => undefined);
  const l = await import('../../src/syntax/list').catch(() => undefined);
  return { printS: (s as { printS?: PrintS } | undefined)?.printS, listRuleset: (l as { listRuleset?: ListRuleset } | undefined)?.listRuleset };
}

/** The first differing line pair of two texts, or undefined when they are equal. */
function firstPair(ours: string, kernel: string): [string, string] | undefined {
  const a = ours.split('\n');
  const b = kernel.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return [a[i] ?? '<end>', b[i] ?? '<end>'];
  return undefined;
}

/** The known difference that explains this one, if any. */
function known(form: KnownDifference['form'], ours: string, kernel: string): KnownDifference | undefined {
  const p = firstPair(ours, kernel);
  if (!p) return undefined;
  return KNOWN.find((k) => k.form === form && new RegExp(k.podtables).test(p[0]) && new RegExp(k.kernel).test(p[1]));
}

const tolerated = new Map<KnownDifference, number>();
const tolerate = (k: KnownDifference) => tolerated.set(k, (tolerated.get(k) ?? 0) + 1);

/** Every difference between podtables and the kernel for one case, as text. */
async function compare(ns: string, backend: Backend, c: Case, index: number, p: Awaited<ReturnType<typeof printers>>): Promise<string[]> {
  const diffs: string[] = [];
  const parsed = parseRestore(c.text, { family: c.family });
  const ourError = parsed.issues.find((i) => i.severity === 'error');
  const r = await restore(ns, c.text, backend, c.family);
  if (r.code !== 0 || ourError) {
    if (r.code !== 0 && !ourError) diffs.push(`kernel refuses, podtables accepts: ${r.stderr.trim().split('\n')[0]}`);
    if (r.code === 0 && ourError) diffs.push(`podtables refuses, kernel accepts: ${ourError.line}:${ourError.column}: ${ourError.message}`);
    return diffs;
  }
  const rs = parsed.ruleset;
  const kernel = await save(ns, backend, c.family);
  const d = firstDifference(saveRuleset(rs), inOrder(kernel, rs.tables.map((t) => t.name)));
  if (d) diffs.push(`save: ${d}`);
  // save covers every table; each case also compares one listing of one table, in turn, so that
  // a run stays short (three processes per case) while every table meets every listing form
  const table = TABLE_NAMES[index % TABLE_NAMES.length];
  const form = Math.floor(index / TABLE_NAMES.length) % 3;
  if (form === 0 && p.printS) {
    const k = await iptables(ns, backend, ['-t', table, '-S'], c.family);
    const ours = p.printS(rs, { table });
    const kd = known('-S', ours, k);
    if (kd) tolerate(kd);
    else if (firstDifference(ours, k)) diffs.push(`-t ${table} -S: ${firstDifference(ours, k)}`);
  }
  if (form > 0 && p.listRuleset) {
    const verbose = form === 2;
    const k = await iptables(ns, backend, ['-t', table, '-L', '-n', ...(verbose ? ['-v'] : [])], c.family);
    const ours = p.listRuleset(rs, { table, numeric: true, verbose, exact: false, lineNumbers: false });
    const kd = known('-L', ours, k);
    if (kd) tolerate(kd);
    else if (firstDifference(ours, k)) diffs.push(`-t ${table} -L -n${verbose ? ' -v' : ''}: ${firstDifference(ours, k)}`);
  }
  return diffs;
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`random rulesets print as the kernel prints them: save, -S, -L -n, -L -n -v (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    const p = await printers();
    if (!p.printS) t.diagnostic('src/syntax/rules-s.ts printS is not in this tree yet: -S is not compared');
    if (!p.listRuleset) t.diagnostic('src/syntax/list.ts listRuleset is not in this tree yet: -L is not compared');
    const cases: Case[] = [];
    for (const family of ['ipv4', 'ipv6'] as Family[]) cases.push(...fc.sample(caseArbitrary(family), { seed: SEED, numRuns: RUNS }));
    const v6 = new Set(bodies('ipv6').uncovered);
    const uncovered = bodies('ipv4').uncovered.filter((n) => v6.has(n));
    if (uncovered.length) t.diagnostic(`registered extensions without ok vector rows, not generated: ${uncovered.join(', ')}`);
    const failures: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: WORKERS }, () => withNetns(async (ns) => {
      // objects the vector rows refer to (ipsets), created once per namespace
      for (const family of ['ipv4', 'ipv6'] as Family[]) for (const [cmd, ...args] of setupCommands(family)) await inNetnsOk(ns, cmd, args);
      while (next < cases.length) {
        const k = next++;
        const diffs = await compare(ns, backend, cases[k], k, p);
        if (diffs.length && failures.length < 5) failures.push(`case ${k} (${cases[k].family}):\n  ${diffs.join('\n  ')}\n--- ruleset ---\n${cases[k].text}`);
        else if (diffs.length) failures.push(`case ${k}: ${diffs[0]}`);
      }
    }, 'ptp')));
    for (const [k, n] of tolerated) t.diagnostic(`${n} listings differ as known (${k.form}): ${k.reason}`);
    tolerated.clear();
    t.diagnostic(`${cases.length} cases, seed ${SEED} (replay: PROPERTY_SEED=${SEED} PROPERTY_RUNS=${RUNS})`);
    if (failures.length) assert.fail(`${failures.length} of ${cases.length} cases differ; seed ${SEED} (PROPERTY_SEED=${SEED} PROPERTY_RUNS=${RUNS})\n${failures.join('\n')}`);
  });
}
