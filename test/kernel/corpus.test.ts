/**
 * Every real-world dump the kernel loads converts byte-identically: podtables'
 * saveRuleset(parseRestore(text)) equals iptables-save after iptables-restore of the same text,
 * plain and with counters (`restore -c` / `save -c`), on both backends. Dumps the kernel refuses
 * must be refused by podtables too. Exceptions live in test/expectations/corpus.json, each with
 * its reason; an exception that no longer happens is reported so that the list stays short.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import { inNetnsOk } from '../../src/kernel/netns';
import type { Family } from '../../src/model/addr';
import type { Ruleset } from '../../src/model/ruleset';
import { needKernel, restore, save, withNetns, type Backend } from '../support/kernel';
import { needShared } from '../support/shared';
import { corpusFamily, corpusFiles, CORPUS_ROOT, deanonymise, firstDifference, inOrder, ipsetNames, readCorpus, tableBlocks } from '../support/corpus';

/** What happened to one file on one backend, when it is not a byte-identical match. */
type Outcome = 'differs' | 'differs-counters' | 'podtables-accepts' | 'podtables-refuses' | 'podtables-accepts-anonymised';

interface Expectation {
  file: string;
  backend: Backend | 'both';
  outcome: Outcome;
  reason: string;
}

const EXPECTATIONS: Expectation[] = JSON.parse(readFileSync(new URL('../expectations/corpus.json', import.meta.url), 'utf8'));

/**
 * Tables the nft backend does not create: a `*raw` … `COMMIT` block without chain lines or rules
 * makes no nft table, so iptables-nft-save omits it, while legacy instantiates the table. podtables
 * models the legacy view; such a pristine table is left out of the nft comparison.
 */
function pristine(rs: Ruleset, name: string): boolean {
  const t = rs.tables.find((x) => x.name === name);
  return !!t && t.chains.every((c) => c.policy === 'ACCEPT' && c.rules.length === 0);
}

function ours(rs: Ruleset, kernelSave: string, backend: Backend, counters: boolean): string {
  const kernelTables = tableBlocks(kernelSave);
  const keep = rs.tables.filter((t) => backend === 'legacy' || kernelTables.has(t.name) || !pristine(rs, t.name));
  return saveRuleset({ ...rs, tables: keep }, { counters });
}

async function createIpsets(ns: string, names: string[], family: Family): Promise<void> {
  for (const n of names) await inNetnsOk(ns, 'ipset', ['create', n, 'hash:net', 'family', family === 'ipv6' ? 'inet6' : 'inet']);
}

/** How one file went: compared (and maybe differed), or refused by the kernel. */
interface FileResult {
  compared: boolean;
  found: { outcome: Outcome; detail: string }[];
}

async function checkFile(file: string, backend: Backend): Promise<FileResult> {
  const original = readCorpus(file);
  const family = corpusFamily(original);
  const text = deanonymise(original);
  const found: { outcome: Outcome; detail: string }[] = [];
  let compared = false;
  const parsed = parseRestore(text, { family });
  const ourError = parsed.issues.find((i) => i.severity === 'error');
  if (text !== original && !parseRestore(original, { family }).issues.some((i) => i.severity === 'error'))
    found.push({ outcome: 'podtables-accepts-anonymised', detail: 'the kernel refuses the XX:XX:XX:XX:XX:XX MACs' });
  await withNetns(async (ns) => {
    // sets are host state, not ruleset content: create the ones the dump names, as its host had them
    await createIpsets(ns, ipsetNames(text), family);
    const r = await restore(ns, text, backend, family);
    if (r.code !== 0) {
      if (!ourError) found.push({ outcome: 'podtables-accepts', detail: `kernel: ${r.stderr.trim().split('\n')[0]}` });
      return;
    }
    if (ourError) {
      found.push({ outcome: 'podtables-refuses', detail: `${ourError.line}:${ourError.column}: ${ourError.message}` });
      return;
    }
    compared = true;
    const order = parsed.ruleset.tables.map((t) => t.name);
    const kernel = await save(ns, backend, family);
    const mine = ours(parsed.ruleset, kernel, backend, false);
    const d = firstDifference(mine, inOrder(kernel, order));
    if (d) found.push({ outcome: 'differs', detail: d });
    const rc = await restore(ns, text, backend, family, ['-c']);
    const parsedC = parseRestore(text, { family, counters: true });
    const ourErrorC = parsedC.issues.find((i) => i.severity === 'error');
    if (rc.code !== 0 || ourErrorC) {
      if (rc.code !== 0 && !ourErrorC) found.push({ outcome: 'differs-counters', detail: `kernel refused it with -c: ${rc.stderr.trim().split('\n')[0]}` });
      if (rc.code === 0 && ourErrorC) found.push({ outcome: 'differs-counters', detail: `podtables refused it with counters: ${ourErrorC.message}` });
      return;
    }
    const kernelC = await save(ns, backend, family, ['-c']);
    const dc = firstDifference(ours(parsedC.ruleset, kernelC, backend, true), inOrder(kernelC, order));
    if (dc) found.push({ outcome: 'differs-counters', detail: dc });
  }, 'ptc');
  return { compared, found };
}

/** Run `fn` over `items` with at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`real-world dumps convert byte-identically to the kernel's iptables-save (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    const files = corpusFiles();
    if (!needShared(t, CORPUS_ROOT)) return;
    assert.ok(files.length > 0, `no dumps in ${CORPUS_ROOT}`);
    const failures: string[] = [];
    const used = new Set<Expectation>();
    let identical = 0;
    let refused = 0;
    await pool(files, 4, async (file) => {
      const { compared, found } = await checkFile(file, backend);
      if (compared && found.length === 0) identical++;
      if (!compared && found.length === 0) refused++;
      for (const f of found) {
        const e = EXPECTATIONS.find((x) => x.file === file && x.outcome === f.outcome && (x.backend === backend || x.backend === 'both'));
        if (e) used.add(e);
        else failures.push(`${file} (${backend}): ${f.outcome}\n  ${f.detail}`);
      }
    });
    t.diagnostic(`${files.length} files: ${identical} loaded and byte-identical with and without counters, ${refused} refused by the kernel and by podtables, ${used.size} recorded exceptions`);
    for (const e of EXPECTATIONS)
      if ((e.backend === backend || e.backend === 'both') && !used.has(e))
        t.diagnostic(`stale expectation (remove it from test/expectations/corpus.json): ${e.file} ${e.outcome}`);
    assert.deepEqual(failures.sort(), []);
  });
}

/**
 * Small restore files at the edges of the format, each as the kernel reads it (measured on 1.8.9):
 * podtables must accept exactly what the kernel accepts and save it the same way. `only` marks a
 * case where the backends disagree; podtables follows the backend named.
 */
const EDGES: { name: string; text: string; only?: Backend }[] = [
  { name: 'a table name after `* `', text: '* nat\n:FOO - [0:0]\nCOMMIT\n' },
  { name: 'words after the table name', text: '*filter junk\nCOMMIT\n' },
  { name: 'COMMIT with a trailing blank', text: '*filter\nCOMMIT \n' },
  { name: 'an indented COMMIT', text: '*filter\n COMMIT\n' },
  { name: 'an indented table line', text: ' *filter\nCOMMIT\n' },
  { name: 'an indented chain line', text: '*filter\n :INPUT ACCEPT [0:0]\nCOMMIT\n' },
  { name: 'an indented comment', text: '*filter\n  # c\nCOMMIT\n' },
  { name: 'a line of blanks', text: '*filter\n   \nCOMMIT\n' },
  { name: 'an indented rule', text: '*filter\n  -A INPUT -j ACCEPT\nCOMMIT\n' },
  { name: 'a chain line without counters', text: '*filter\n:INPUT DROP\n:FOO -\nCOMMIT\n' },
  { name: 'a chain line without policy', text: '*filter\n:FOO\nCOMMIT\n' },
  { name: 'junk after chain counters', text: '*filter\n:INPUT ACCEPT [0:0] junk\nCOMMIT\n' },
  { name: 'a 29-character chain name', text: '*filter\n:abcdefghijabcdefghijabcdefghi - [0:0]\nCOMMIT\n' },
  { name: 'a 28-character chain name', text: '*filter\n:abcdefghijabcdefghijabcdefgh - [0:0]\nCOMMIT\n' },
  { name: 'a rule outside a table', text: '-A INPUT -j ACCEPT\n' },
  { name: 'a comment of 10,239 bytes', text: `#${'a'.repeat(10238)}\n*filter\nCOMMIT\n` },
  { name: 'a comment of 10,240 bytes', text: `#${'a'.repeat(10239)}\n*filter\nCOMMIT\n` },
  { name: 'a table never committed', text: '*filter\n' },
  { name: 'COMMIT twice', text: '*filter\nCOMMIT\nCOMMIT\n' },
  { name: 'a closing quote ends a word', text: '*filter\n-A INPUT -m comment --comment "foo"bar -j ACCEPT\nCOMMIT\n' },
  { name: 'a quote inside a word joins it', text: '*filter\n-A INPUT -m comment --comment foo"bar baz" -j ACCEPT\nCOMMIT\n' },
  { name: 'escapes inside quotes', text: '*filter\n-A INPUT -m comment --comment "a\\"b\\\\c\\nd" -j ACCEPT\nCOMMIT\n' },
  { name: 'single quotes are plain characters', text: "*filter\n-A INPUT -m comment --comment 'x' -j ACCEPT\nCOMMIT\n" },
  { name: 'an empty quoted word', text: '*filter\n-A INPUT -m comment --comment "" -j ACCEPT\nCOMMIT\n' },
  { name: 'DROP in nat', text: '*nat\n:FOO - [0:0]\n-A FOO -j DROP\nCOMMIT\n' },
  { name: 'a DROP policy in nat', text: '*nat\n:PREROUTING DROP [0:0]\nCOMMIT\n' },
  { name: 'an empty interface', text: '*filter\n-A INPUT -i "" -j ACCEPT\nCOMMIT\n' },
  { name: '-i + (any interface)', text: '*filter\n-A INPUT -i + -j ACCEPT\nCOMMIT\n' },
  { name: '! -i + (never matches)', text: '*filter\n-A INPUT ! -i + -j ACCEPT\nCOMMIT\n', only: 'nft' },
  { name: 'a final COMMIT without newline', text: '*filter\n-A INPUT -j ACCEPT\nCOMMIT', only: 'nft' },
  { name: 'a verbatim option of an unknown target keeps its quotes', text: '*filter\n-A INPUT -j AUDIT --type "accept"\nCOMMIT\n' },
  { name: 'core options after a verbatim match', text: '*filter\n-A INPUT -m helper --helper ftp -i eth0 -s 10.0.0.1 -j ACCEPT\nCOMMIT\n' },
];

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`restore files at the edges of the format read as the kernel reads them (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    const failures: string[] = [];
    for (const e of EDGES) {
      if (e.only && e.only !== backend) continue;
      // a namespace per file: what an earlier file left in a table would show in this one's save
      await withNetns(async (ns) => {
        const parsed = parseRestore(e.text, { family: 'ipv4' });
        const ourError = parsed.issues.find((i) => i.severity === 'error');
        const r = await restore(ns, e.text, backend, 'ipv4');
        if ((r.code === 0) !== !ourError) {
          failures.push(`${e.name}: kernel ${r.code === 0 ? 'accepts' : `refuses (${r.stderr.trim().split('\n')[0]})`}, podtables ${ourError ? `refuses (${ourError.message})` : 'accepts'}`);
          return;
        }
        if (ourError) return;
        const kernel = await save(ns, backend, 'ipv4');
        const d = firstDifference(ours(parsed.ruleset, kernel, backend, false), inOrder(kernel, parsed.ruleset.tables.map((x) => x.name)));
        if (d) failures.push(`${e.name}: ${d}`);
      }, 'pte');
    }
    assert.deepEqual(failures, []);
  });
}
