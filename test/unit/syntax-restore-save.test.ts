/**
 * The quick paths of the save/restore reader and printer agree with the plain rules they stand
 * for: the tokenizer with a character-by-character reading of add_param_to_argv, option tables
 * with a scan of each extension's options, every flag spelling with its short form, IPv4 reading
 * with the dotted-quad rules, the table checks with a walk over chain names, and chunked printing
 * with one join of all lines. Inputs are drawn by fast-check (PROPERTY_RUNS scales them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { splitWords, tokenize, type Token, type Words } from '../../src/syntax/tokenize';
import { exactOption, parseCommand } from '../../src/syntax/command';
import { parseRestore } from '../../src/syntax/restore';
import { checkTable } from '../../src/syntax/builder';
import { orderedChains, saveRule, saveTable } from '../../src/syntax/save';
import { allExtensions } from '../../src/extensions/index';
import { formatCidr, parseCidr } from '../../src/model/addr';
import { BUILTIN_CHAINS, emptyTable, isBuiltin, type Chain, type Rule, type Table } from '../../src/model/ruleset';
import type { Issue } from '../../src/model/issue';
import type { PrintContext } from '../../src/extensions/types';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 2000);

/** add_param_to_argv read one character at a time: the rules tokenize.ts states, spelled out plainly. */
function referenceTokens(line: string): { tokens: Token[]; error?: { message: string; column: number } } {
  const tokens: Token[] = [];
  let cur = '';
  let start = -1;
  let quoteAt = -1;
  let quoted = false;
  let escaped = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoteAt >= 0) {
      if (escaped) (cur += c), (escaped = false);
      else if (c === '\\') escaped = true;
      else if (c === '"') {
        tokens.push({ text: cur, column: start + 1, quoted: true });
        (cur = ''), (start = -1), (quoteAt = -1), (quoted = false);
      } else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      if (start >= 0) tokens.push(quoted ? { text: cur, column: start + 1, quoted } : { text: cur, column: start + 1 });
      (cur = ''), (start = -1), (quoted = false);
      continue;
    }
    if (start < 0) start = i;
    if (c === '"') (quoteAt = i), (quoted = true);
    else cur += c;
  }
  if (quoteAt >= 0) return { tokens, error: { message: 'unterminated quoted string', column: quoteAt + 1 } };
  if (start >= 0) tokens.push(quoted ? { text: cur, column: start + 1, quoted } : { text: cur, column: start + 1 });
  return { tokens };
}

/** Lines made of the characters the tokenizer treats specially, and a few ordinary ones. */
const lineArb = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '"', '\\', "'", 'a', 'b', '-', '!', 'é', '\r'), maxLength: 40 });

test('the tokenizer splits every line as add_param_to_argv does, character by character', () => {
  fc.assert(fc.property(lineArb, (line) => assert.deepEqual(tokenize(line), referenceTokens(line))), { numRuns: RUNS * 5 });
});

test('words after a line\'s counters are the words of the rest of the line, in the line\'s columns', () => {
  fc.assert(fc.property(lineArb, fc.nat(45), (line, at) => {
    const from = Math.min(at, line.length);
    const w = splitWords(line, undefined, from);
    const want = referenceTokens(line.slice(from));
    assert.deepEqual(w.texts, want.tokens.map((t) => t.text));
    assert.deepEqual(w.columns, want.tokens.map((t) => t.column + from));
    assert.deepEqual(w.quoted?.map((q) => q), line.slice(from).includes('"') ? want.tokens.map((t) => !!t.quoted) : undefined);
    assert.deepEqual(w.error, want.error && { ...want.error, column: want.error.column + from });
  }), { numRuns: RUNS * 2 });
});

test('words split into the lists of an earlier line are the words of a fresh split', () => {
  const plain = (w: Words) => ({ texts: [...w.texts], columns: [...w.columns], quoted: w.quoted ? [...w.quoted] : undefined, error: w.error });
  fc.assert(fc.property(fc.array(lineArb, { minLength: 1, maxLength: 5 }), (lines) => {
    let reused: Words | undefined;
    for (const line of lines) {
      reused = splitWords(line, reused);
      assert.deepEqual(plain(reused), plain(splitWords(line)));
    }
  }), { numRuns: RUNS });
});

test('option lookup by table finds what a scan of the options table finds, for every extension', () => {
  const scan = (options: readonly { name: string; aliases?: string[] }[], name: string) => options.find((o) => o.name === name || o.aliases?.includes(name));
  for (const ext of allExtensions()) {
    const names = ext.options.flatMap((o) => [o.name, ...(o.aliases ?? [])]);
    // every spelling, prefixes of them (which only the abbreviation rule may take), and names of
    // Object.prototype members, which a lookup table must not find
    const probes = [...names, ...names.map((n) => n.slice(0, -1)), 'constructor', '__proto__', 'toString', '', 'nosuchoption'];
    for (const p of probes) assert.equal(exactOption(ext, p), scan(ext.options, p), `${ext.name} --${p}`);
  }
  fc.assert(fc.property(fc.constantFrom(...allExtensions()), fc.string({ maxLength: 12 }), (ext, p) => exactOption(ext, p) === scan(ext.options, p)), { numRuns: RUNS });
});

test('every spelling of a flag reads as its short form does', () => {
  const long: [string, string][] = [
    ['-A', '--append'], ['-s', '--source'], ['-s', '--src'], ['-d', '--destination'], ['-d', '--dst'], ['-p', '--protocol'],
    ['-i', '--in-interface'], ['-o', '--out-interface'], ['-m', '--match'], ['-j', '--jump'], ['-t', '--table'],
  ];
  const ctx = { family: 'ipv4' as const, table: 'filter' as const, line: 1 };
  const words = (line: string): Token[] => tokenize(line).tokens;
  const base = '-A FOO -t filter -s 10.0.0.0/8 -d 10.1.2.3 -p tcp -i eth0 -o eth1 -m tcp --dport 80 -m comment --comment "a b" -j ACCEPT';
  const want = parseCommand(words(base), ctx);
  assert.deepEqual(want.issues, []);
  for (const [short, spelled] of long) {
    const line = base.replace(new RegExp(`(^| )${short} `), `$1${spelled} `);
    assert.notEqual(line, base);
    assert.deepEqual(parseCommand(words(line), ctx), want, line);
  }
  // two-letter words that are no flag stay unknown options, whatever their letter
  for (let c = 33; c < 127; c++) {
    const flag = `-${String.fromCharCode(c)}`;
    if ('ADIRNXFZPELSt46wWnvxpsdiofcmjg-'.includes(flag[1])) continue;
    const r = parseCommand(['-A', 'FOO', flag, 'x'].map((text, k) => ({ text, column: k + 1 })), ctx);
    assert.equal(r.issues[0]?.code, 'unknown-option', flag);
  }
});

/** The dotted-quad rules: four parts of 1-3 digits, each 0-255 without a leading zero. */
function referenceQuad(t: string): number | null {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(t)) return null;
  let v = 0;
  for (const p of t.split('.')) {
    if (Number(p) > 255 || (p.length > 1 && p[0] === '0')) return null;
    v = v * 256 + Number(p);
  }
  return v;
}

test('IPv4 -s/-d values read as the dotted-quad rules say, masked, and print back', () => {
  const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('', '00', '01', '1234', 'a', '-1'));
  const quad = fc.array(part, { minLength: 1, maxLength: 5 }).map((ps) => ps.join('.'));
  const mask = fc.oneof(fc.constant(''), fc.integer({ min: 0, max: 40 }).map((n) => `/${n}`), quad.map((q) => `/${q}`), fc.constantFrom('/', '/x', '/032', '/99999999999999999999'));
  fc.assert(fc.property(quad, mask, (q, m) => {
    const got = parseCidr(q + m, 'ipv4');
    const a = referenceQuad(q);
    if (a === null) return assert.equal(got, `host/network \`${q}' not found`);
    const mt = m.slice(1);
    let mv: number | null;
    if (m === '') mv = 0xffffffff;
    else if (/^\d+$/.test(mt)) mv = Number(mt) > 32 ? null : Number(mt) === 0 ? 0 : (0xffffffff << (32 - Number(mt))) >>> 0;
    else mv = referenceQuad(mt);
    if (mv === null) return assert.equal(got, `invalid mask \`${mt}' specified`);
    assert.deepEqual(got, { family: 'ipv4', addr: BigInt((a & mv) >>> 0), mask: BigInt(mv) });
    assert.deepEqual(parseCidr(formatCidr(got as Exclude<typeof got, string>), 'ipv4'), got);
  }), { numRuns: RUNS * 5 });
});

/** The table checks as a walk over chain names with maps and sets: what checkTable must report. */
function referenceCheck(t: Table, hookOf: (r: Rule) => readonly string[] | undefined): Issue[] {
  const issues: Issue[] = [];
  const err = (line: number, message: string, code: string): Issue => ({ severity: 'error', code, message, line, column: 1 });
  const names = new Map<string, Chain>();
  for (const c of t.chains) names.set(c.name, c);
  const edges = new Map<string, string[]>();
  for (const c of t.chains) {
    const out: string[] = [];
    for (const r of c.rules) {
      const tg = r.target;
      if (tg?.kind === 'jump' || tg?.kind === 'goto') {
        if (!names.has(tg.chain) || isBuiltin(t.name, tg.chain))
          issues.push(err(r.line ?? 0, `Couldn't load target \`${tg.chain}': No such file or directory (table ${t.name}, chain ${c.name})`, 'no-chain'));
        else out.push(tg.chain);
      }
    }
    edges.set(c.name, out);
  }
  const state = new Map<string, 1 | 2>();
  for (const root of [...BUILTIN_CHAINS[t.name], ...t.chains.map((c) => c.name)]) {
    if (state.has(root)) continue;
    const stack = [{ name: root, next: 0 }];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const out = edges.get(top.name) ?? [];
      if (top.next >= out.length) {
        state.set(top.name, 2);
        stack.pop();
        continue;
      }
      const m = out[top.next++];
      if (state.get(m) === 2) continue;
      if (state.get(m) === 1) {
        const path = stack.map((f) => f.name);
        issues.push(err(names.get(top.name)?.rules[0]?.line ?? 0, `jump loop in table ${t.name}: ${[...path.slice(path.indexOf(m)), m].join(' -> ')}`, 'loop'));
        return issues;
      }
      state.set(m, 1);
      stack.push({ name: m, next: 0 });
    }
  }
  const limited = new Map<string, Rule[]>();
  for (const c of t.chains) for (const r of c.rules) if (hookOf(r)) limited.set(c.name, [...(limited.get(c.name) ?? []), r]);
  for (const hook of BUILTIN_CHAINS[t.name]) {
    const seen = new Set<string>();
    const stack = [hook as string];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const r of limited.get(n) ?? []) {
        const hooks = hookOf(r)!;
        if (!hooks.includes(hook)) issues.push(err(r.line ?? 0, `REDIRECT: used from hook ${hook}${n !== hook ? ` (through chain ${n})` : ''}, but only valid from ${hooks.join('/')}`, 'wrong-hook'));
      }
      for (const m of edges.get(n) ?? []) if (!seen.has(m)) stack.push(m);
    }
  }
  return issues;
}

test('the table checks report the jumps, loops and hooks a walk over chain names reports', () => {
  const CHAINS = ['A', 'B', 'C', 'D', 'PREROUTING', 'OUTPUT'];
  // rules: a jump or goto to any name (missing, built-in, repeated chains), REDIRECT, or nothing
  const ruleArb = fc.oneof(
    fc.constantFrom(...CHAINS, 'E').map((chain) => ({ kind: 'jump' as const, chain })),
    fc.constantFrom(...CHAINS).map((chain) => ({ kind: 'goto' as const, chain })),
    fc.constant({ kind: 'redirect' as const }),
    fc.constant({ kind: 'none' as const }),
  );
  // user chains (a name may repeat), and rules each placed in one of the table's chains
  const tableArb = fc.tuple(fc.array(fc.constantFrom('A', 'B', 'C', 'D'), { maxLength: 6 }), fc.array(fc.tuple(fc.nat(), ruleArb), { maxLength: 14 }));
  fc.assert(fc.property(tableArb, ([user, rules]) => {
    const t = emptyTable('nat');
    for (const name of user) t.chains.push({ name, rules: [] });
    rules.forEach(([at, r], line) => {
      const rule: Rule = { matches: [], line: line + 1 };
      if (r.kind === 'jump' || r.kind === 'goto') rule.target = { kind: r.kind, chain: r.chain };
      else if (r.kind === 'redirect') rule.target = { kind: 'extension', name: 'REDIRECT', info: { random: false } };
      t.chains[at % t.chains.length].rules.push(rule);
    });
    const hookOf = (r: Rule) => (r.target?.kind === 'extension' ? ['PREROUTING', 'OUTPUT'] : undefined);
    const got: Issue[] = [];
    checkTable(t, got);
    assert.deepEqual(got, referenceCheck(t, hookOf));
  }), { numRuns: RUNS });
});

test('user chains print in byte order of their names, sorted input or not', () => {
  // many names with shared prefixes (as kube-proxy's) and a few odd characters
  const unit = fc.constantFrom('A', 'B', 'a', '-', '_', '1', 'Z', '\u00e9', '\ud83d', '\ud800');
  const name = fc.tuple(fc.constantFrom('', 'KUBE-', 'KUBE-SEP-', 'KUBE-SVC-', 'K'), fc.string({ unit, minLength: 1, maxLength: 6 })).map(([p, s]) => p + s);
  fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 300 }), fc.boolean(), (names, presort) => {
    const given = presort ? [...names].sort() : names;
    const t = emptyTable('filter');
    for (const n of given) if (!isBuiltin('filter', n)) t.chains.push({ name: n, rules: [] });
    const user = orderedChains(t).slice(BUILTIN_CHAINS.filter.length).map((c) => c.name);
    assert.deepEqual(user, given.filter((n) => !isBuiltin('filter', n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  }), { numRuns: RUNS });
});

test('a table of any length prints as one join of its lines', () => {
  const ctx: PrintContext = { family: 'ipv4', numeric: true };
  for (const n of [0, 1, 510, 511, 512, 513, 1020, 1023, 1024, 1025, 2000]) {
    const rules = Array.from({ length: n }, (_, k) => `-A INPUT -s 10.0.${k >> 8}.${k & 255}/32 -m comment --comment "rule ${k}" -j ACCEPT`);
    const text = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...rules, 'COMMIT', ''].join('\n');
    const r = parseRestore(text, { family: 'ipv4' });
    assert.deepEqual(r.issues, []);
    const t = r.ruleset.tables[0];
    const lines = ['*filter', ...t.chains.map((c) => `:${c.name} ${c.policy} [0:0]`), ...t.chains.flatMap((c) => c.rules.map((x) => saveRule(c.name, x, ctx))), 'COMMIT'];
    assert.equal(saveTable(t, 'ipv4'), lines.join('\n') + '\n', `${n} rules`);
    assert.equal(saveTable(t, 'ipv4'), text, `${n} rules`);
  }
});

test('line numbers count lines as a split on newlines does, with or without a final newline', () => {
  fc.assert(fc.property(fc.array(fc.constantFrom('*filter', ':FOO - [0:0]', '-A FOO -j ACCEPT', '', '# note', '-A FOO -s 1.2.3.4/40', 'COMMIT', '-A BAR -j ACCEPT'), { maxLength: 10 }), fc.boolean(), (lines, final) => {
    const text = lines.join('\n') + (final ? '\n' : '');
    const r = parseRestore(text, { family: 'ipv4' });
    const total = text.split('\n').length;
    for (const i of r.issues) {
      assert.ok(i.line! >= 1 && i.line! <= total, JSON.stringify(i));
      if (i.code === 'no-commit' && /is not committed/.test(i.message)) assert.equal(i.line, total);
      else assert.ok(text.split('\n')[i.line! - 1] !== undefined);
    }
  }), { numRuns: RUNS });
});
