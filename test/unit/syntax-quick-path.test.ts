/**
 * The restore reader's quick path for `-A` lines (fast-rule.ts) and the other shortcuts of the
 * dump reader and printer agree with the general code they stand in for: a rule the quick path
 * reads is the rule the general reader gives, field by field and in the same field order, for
 * every vector row, every corpus dump line, a kube-proxy dump and random lines of options; IPv4
 * addresses compared as numbers are the addresses parseCidr reads; chains of a repeated name print
 * once, as a lookup by name finds them; strings and ports print and read as the plain rules say. Inputs are drawn by fast-check (PROPERTY_RUNS scales them).
 */
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { quickAppend } from '../../src/syntax/fast-rule';
import { memoCidr, parseWords, RecentAddresses, type CommandContext } from '../../src/syntax/command';
import { splitWords } from '../../src/syntax/tokenize';
import { orderedChains } from '../../src/syntax/save';
import { parseCidr, type Family } from '../../src/model/addr';
import { BUILTIN_CHAINS, emptyTable, type TableName } from '../../src/model/ruleset';
import { ALL_VECTORS } from '../vectors/index';
import { rowFamily, rowTable } from '../support/vectors';
import { corpusFamily, corpusFiles, readCorpus } from '../support/corpus';
import { kubeDump } from '../../bench/parse';
import { decimal, parsePort, saveString } from '../../src/extensions/util';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 2000);

/** JSON with bigints as text: equal texts mean equal values with fields in the same order. */
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

/**
 * Read one `-A` line both ways. When the quick path takes it, the general reader must have read it
 * without a word of complaint into one rule for the same chain, equal to the quick one.
 * Returns whether the quick path took the line.
 */
function sameBothWays(line: string, table: TableName, family: Family): boolean {
  const ctx = (): CommandContext => ({ family, table, line: 7, addresses: new RecentAddresses() });
  const quick = quickAppend(line, 7, ctx());
  if (!quick) return false;
  const general = parseWords(splitWords(line), ctx());
  assert.deepEqual(general.issues, [], line);
  const cmd = general.command;
  assert.ok(cmd && cmd.op === 'append' && cmd.rules.length === 1, line);
  assert.equal(quick.chain, cmd.chain, line);
  assert.deepStrictEqual(quick.rule, cmd.rules[0], line);
  assert.equal(json(quick.rule), json(cmd.rules[0]), `field order: ${line}`);
  return true;
}

test('the quick path reads every vector row it takes as the general reader does', () => {
  let taken = 0;
  let rows = 0;
  for (const set of ALL_VECTORS)
    for (const row of set.rows) {
      rows++;
      if (sameBothWays(`-A ${row.chain ?? 'VEC'} ${row.rule}`, rowTable(row), rowFamily(row))) taken++;
    }
  // most rows are of the shapes dumps are made of; the rest (refused rows among them) go the general way
  assert.ok(taken > rows / 3, `${taken} of ${rows} rows`);
});

test('the quick path takes every line of a kube-proxy dump, reading each as the general reader does', () => {
  let table: TableName = 'filter';
  let lines = 0;
  for (const line of kubeDump(60).split('\n')) {
    if (line.startsWith('*')) table = line.slice(1) as TableName;
    if (!line.startsWith('-A ')) continue;
    lines++;
    assert.ok(sameBothWays(line, table, 'ipv4'), `not taken: ${line}`);
  }
  assert.ok(lines > 500);
});

test('the quick path takes every rule of kube-proxy\'s own expected dumps, reading each as the general reader does', () => {
  for (const dir of ['overall', 'repeated']) {
    const text = readFileSync(new URL(`../fixtures/kube-proxy/${dir}/expected.save`, import.meta.url), 'utf8');
    let table: TableName = 'filter';
    let taken = 0;
    let lines = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1) as TableName;
      if (!line.startsWith('-A ')) continue;
      lines++;
      if (sameBothWays(line, table, 'ipv4')) taken++;
    }
    assert.ok(lines > 10 && taken === lines, `${dir}: ${taken} of ${lines}`);
  }
});

test('the quick path reads every corpus line it takes as the general reader does', () => {
  for (const rel of corpusFiles()) {
    const text = readCorpus(rel);
    const family = corpusFamily(text);
    let table: TableName = 'filter';
    for (const line of text.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1).trim() as TableName;
      if (line.startsWith('-A ') && (BUILTIN_CHAINS as Record<string, unknown>)[table]) sameBothWays(line, table, family);
    }
  }
});

/** Pieces of rule lines: the usual ones, and words the general reader treats specially. */
const PIECES = [
  '-p tcp', '-p udp', '-p all', '! -p tcp', '-p TCP', '-p 6', '-s 10.0.0.1', '! -s 10.0.0.0/8', '-d 10.1.2.3/255.0.255.0', '-d 1.2.3.4,5.6.7.8',
  '-s 010.0.0.1', '-d ::1', '-s 2001:db8::/32', '-i eth0', '! -o lo+', '-f', '-4', '-6', '-t nat', '-c 1 2', '-g KUBE-X', '--jump ACCEPT', '--source 10.0.0.1',
  '-m comment --comment "a b"', '-m comment --comment x', '-m comment --comment "x\\"y"', '-m comment --comment ""', '-m comment --comment "!"',
  '-m comment --comment a"b"', '-m comment --comment "q"r', '--comment=y', '-m tcp --dport 80', '-m tcp ! --sport 1:1024', '--dport 80', '--dp 80',
  '-m tcp --dport=80', '-m tcp --dport http', '-m tcp --dport 70000', '-m tcp --syn', '-m tcp --tcp-flags SYN,ACK SYN', '-m tcp --dport ! 80',
  '-m statistic --mode random --probability 0.5', '-m statistic --mode nth --every 3 --packet 0', '-m statistic ! --probability 0.2',
  '-m mark --mark 0x4000/0x4000', '-m mark ! --mark 1', '-m conntrack --ctstate NEW,ESTABLISHED', '-m multiport --dports 80,443', '-m owner --uid-owner 0',
  '-m rpfilter', '-m nope', '-j ACCEPT', '-j DROP', '-j RETURN', '-j KUBE-X', '-j DNAT --to-destination 1.2.3.4:80', '-j MASQUERADE --random-fully',
  '-j MARK --set-mark 0x1', '-j MARK --or-mark 0x4000', '-j REDIRECT --to-ports 15001', '-j LOG', '-j NOPE', '-j AUDIT', '!', '"q"', '\t', 'x',
];

test('the quick path never reads a line other than the general reader does', () => {
  const lineArb = fc.tuple(
    fc.constantFrom('X', 'INPUT', 'KUBE-SVC-0123456789ABCDEF', '-s', '!', '"q"'),
    fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }),
    fc.array(fc.constantFrom(' ', ' ', ' ', '  '), { minLength: 7, maxLength: 7 }),
    fc.constantFrom<TableName>('filter', 'nat'),
    fc.constantFrom<Family>('ipv4', 'ipv4', 'ipv6'),
  );
  let taken = 0;
  let lines = 0;
  fc.assert(fc.property(lineArb, ([chain, pieces, gaps, table, family]) => {
    const line = `-A ${chain}` + pieces.map((w, k) => gaps[k] + w.replace('\\t', '\t')).join('') + gaps[6].slice(1);
    lines++;
    if (sameBothWays(line, table, family)) taken++;
  }), { numRuns: RUNS * 5 });
  // the property says something only if the quick path takes a fair share of the lines
  assert.ok(taken > lines / 20, `${taken} of ${lines} lines taken`);
});

test('IPv4 addresses compared as numbers are the addresses parseCidr reads, and equal ones are shared', () => {
  const part = fc.oneof(fc.nat(300).map(String), fc.constantFrom('01', '00', '', 'x', '255'));
  const quad = fc.array(part, { minLength: 3, maxLength: 5 }).map((p) => p.join('.'));
  const mask = fc.oneof(fc.constant(''), fc.nat(40).map((n) => `/${n}`), quad.map((q) => `/${q}`), fc.constantFrom('/', '/x', '/032'));
  const memo = new RecentAddresses();
  fc.assert(fc.property(quad, mask, (q, m) => {
    const text = q + m;
    const want = parseCidr(text, 'ipv4');
    assert.deepStrictEqual(memoCidr(text, 'ipv4', memo), want);
    if (typeof want !== 'string') assert.equal(memoCidr(text, 'ipv4', memo), memoCidr(`${text}`, 'ipv4', memo));
  }), { numRuns: RUNS });
});

test('chains given the same name print once, as the last of them, in byte order of names', () => {
  const name = fc.tuple(fc.constantFrom('KUBE-SEP-', 'KUBE-SVC-', 'K', ''), fc.string({ unit: fc.constantFrom('A', 'B', '-', '1', '\u00e9', '\u4e00'), minLength: 1, maxLength: 4 }))
    .map(([p, s]) => p + s);
  fc.assert(fc.property(fc.array(name, { maxLength: 200 }), (names) => {
    const t = emptyTable('filter');
    names.forEach((n, k) => t.chains.push({ name: n, rules: [], counters: { packets: k, bytes: 0 } }));
    const byName = new Map(t.chains.slice(BUILTIN_CHAINS.filter.length).map((c) => [c.name, c]));
    const want = [...byName.keys()].sort().map((n) => byName.get(n));
    assert.deepStrictEqual(orderedChains(t).slice(BUILTIN_CHAINS.filter.length), want);
  }), { numRuns: RUNS });
});

test('string options print as xtables_save_string prints them: bare, quoted, or quoted with escapes', () => {
  const unit = fc.constantFrom('a', 'Z', '0', '-', '_', ' ', '"', "'", '\\', '/', ':', '\u00e9', '!');
  fc.assert(fc.property(fc.string({ unit, maxLength: 12 }), (v) => {
    const want = /^[-_0-9a-zA-Z]+$/.test(v) ? ` ${v}` : ` "${v.replace(/["\\']/g, (c) => '\\' + c)}"`;
    assert.equal(saveString(v), want);
  }), { numRuns: RUNS });
});

test('ports read as numbers exactly when they are all digits, as the pattern reads them', () => {
  const unit = fc.constantFrom('0', '1', '5', '9', 'a', ' ', '-', '+', '.');
  fc.assert(fc.property(fc.string({ unit, maxLength: 20 }), (t) => {
    assert.equal(decimal(t), /^\d+$/.test(t) ? Number(t) : -1);
    const want = /^\d+$/.test(t) && Number(t) <= 65535 ? Number(t) : undefined;
    let got: number | undefined;
    try {
      got = parsePort(t);
    } catch {
      got = undefined;
    }
    assert.equal(got, want);
  }), { numRuns: RUNS });
});
