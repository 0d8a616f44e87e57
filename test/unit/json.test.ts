/** The JSON form (docs/json-schema.md): readable addresses, and a reader that gives the same ruleset back. */
import { CORPUS_DIR, needShared } from '../support/shared';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, fixtureRuleset } from '../support/listings';
import { JSON_FORM, parseJson, rulesetToJson } from '../../src/syntax/json';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import type { Ruleset } from '../../src/model/ruleset';

/** The model without input positions, which the JSON form leaves out. */
const noLines = (rs: Ruleset): Ruleset => ({
  ...rs,
  tables: rs.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map(({ line: _l, ...r }) => r) })) })),
});

test('every fixture survives JSON and back unchanged (model and save form)', () => {
  for (const f of FIXTURES) {
    const rs = fixtureRuleset(f);
    const back = parseJson(rulesetToJson(rs));
    assert.deepEqual(back.issues, [], f.name);
    assert.deepEqual(back.ruleset, noLines(rs), f.name);
    assert.equal(saveRuleset(back.ruleset, { counters: true }), saveRuleset(rs, { counters: true }), f.name);
  }
});

test('addresses are text, IPv6 and masks with holes included', () => {
  const v4 = JSON.parse(rulesetToJson(parseRestore('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ! -s 10.1.0.0/255.255.0.255 -j DROP\nCOMMIT\n').ruleset));
  assert.equal(v4.format, JSON_FORM);
  assert.deepEqual(v4.tables[0].chains[0].rules[0].source, { value: '10.1.0.0/255.255.0.255', invert: true });
  const v6 = JSON.parse(rulesetToJson(parseRestore('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 2001:db8::/32 -j DROP\nCOMMIT\n', { family: 'ipv6' }).ruleset));
  assert.deepEqual(v6.tables[0].chains[0].rules[0].destination, { value: '2001:db8::/32', invert: false });
});

test('addresses and big numbers inside extension data are tagged and come back as the same values', () => {
  const rs: Ruleset = {
    family: 'ipv6',
    tables: [{ name: 'filter', chains: [{ name: 'INPUT', policy: 'ACCEPT', rules: [{ matches: [{ kind: 'match', name: 'x', info: {
      net: { family: 'ipv6', addr: 0x20010db8n << 96n, mask: ((1n << 32n) - 1n) << 96n }, big: (1n << 100n) + 7n, list: [1n, 'a'] } }] }] }] }],
  };
  const text = rulesetToJson(rs);
  assert.match(text, /"\$cidr": "2001:db8::\/32"/);
  assert.match(text, /"\$bigint": "1267650600228229401496703205383"/);
  assert.deepEqual(parseJson(text).ruleset, rs);
});

test('a wrong shape is one error naming the path of the field', () => {
  const doc = JSON.parse(rulesetToJson(fixtureRuleset(FIXTURES[0])));
  doc.tables[0].chains[1].rules[0].target.kind = 'teleport';
  const r = parseJson(JSON.stringify(doc));
  assert.equal(r.issues.length, 1);
  assert.match(r.issues[0].message, /^tables\.0\.chains\.1\.rules\.0\.target/);
  assert.match(parseJson('{"format": "other/9", "family": "ipv4", "tables": []}').issues[0].message, /^format/);
  assert.match(parseJson('not json').issues[0].message, /^not JSON/);
  const bad = JSON.parse(rulesetToJson(fixtureRuleset(FIXTURES[0])));
  bad.tables[0].chains[0].rules[0].source.value = '10.0.0.300/8';
  assert.match(parseJson(JSON.stringify(bad)).issues[0].message, /source: host\/network `10.0.0.300' not found/);
});

test('every iptables-save dump of the moby corpus survives JSON and back', (t) => {
  const dir = join(CORPUS_DIR, 'moby');
  if (!needShared(t, dir)) return;
  const files: string[] = [];
  const walk = (d: string) => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else files.push(p); } };
  walk(dir);
  let n = 0;
  for (const f of files) {
    const r = parseRestore(readFileSync(f, 'utf8'));
    if (r.issues.some((i) => i.severity === 'error')) continue;
    const back = parseJson(rulesetToJson(r.ruleset));
    assert.deepEqual(back.issues, [], f);
    assert.equal(saveRuleset(back.ruleset, { counters: true }), saveRuleset(r.ruleset, { counters: true }), f);
    n++;
  }
  assert.ok(n >= 10, `only ${n} dumps read`);
});
