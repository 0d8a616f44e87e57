/** `-S` and `-v -S`, compared with what iptables 1.8.9 printed for the fixtures (test/fixtures/listings). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, fixtureRuleset, loadCaptured, namesOf, ours } from '../support/listings';
import { printS, sRule } from '../../src/syntax/rules-s';
import { parseRestore } from '../../src/syntax/restore';
import { InputError } from '../../src/model/issue';

for (const f of FIXTURES) {
  test(`-S of ${f.name} is byte-identical to the kernel's, with and without -v and per chain`, () => {
    const cap = loadCaptured(f);
    assert.ok(cap, `${f.name}.kernel.json is missing: run npx tsx test/support/listings.ts as root`);
    const rs = fixtureRuleset(f);
    let n = 0;
    for (const t of f.tables)
      for (const a of argSets(t, f.chains[t]).filter((x) => x.includes('-S'))) {
        assert.equal(ours(rs, a, namesOf(cap)), cap.outputs[a.join(' ')], `iptables ${a.join(' ')}`);
        n++;
      }
    assert.ok(n >= 3);
  });
}

test('-v -S puts -c after the matches and before -j or -g, and at the end of a rule without target', () => {
  const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n:U - [0:0]\n[3:4] -A INPUT -p tcp -m tcp --dport 80 -g U\n[5:6] -A INPUT -p gre\nCOMMIT\n').ruleset;
  const rules = rs.tables[0].chains[0].rules;
  const ctx = { family: 'ipv4' as const, numeric: true };
  assert.equal(sRule('INPUT', rules[0], ctx, true), '-A INPUT -p tcp -m tcp --dport 80 -c 3 4 -g U');
  assert.equal(sRule('INPUT', rules[1], ctx, true), '-A INPUT -p gre -c 5 6');
});

test('-S of a table the ruleset lacks prints its empty built-in chains, as for a fresh kernel table', () => {
  const rs = parseRestore('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n').ruleset;
  assert.equal(printS(rs, { table: 'raw' }), '-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n');
});

test('-S of a chain that does not exist is a user error naming it', () => {
  const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n').ruleset;
  assert.throws(() => printS(rs, { table: 'filter', chain: 'NOPE' }), (e) => e instanceof InputError && /NOPE/.test(e.message));
});
