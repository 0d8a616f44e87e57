/** `-L` in every flag combination, compared with what iptables 1.8.9 printed for the fixtures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FIXTURES, argSets, fixtureRuleset, loadCaptured, namesOf, ours } from '../support/listings';
import { formatCount, listAddress, listRuleOptions, listRuleset } from '../../src/syntax/list';
import { parseRestore } from '../../src/syntax/restore';
import { parseCidr, type Cidr } from '../../src/model/addr';

for (const f of FIXTURES) {
  test(`-L of ${f.name} is byte-identical to the kernel's under all 16 combinations of -n -v -x --line-numbers`, () => {
    const cap = loadCaptured(f);
    assert.ok(cap, `${f.name}.kernel.json is missing: run npx tsx test/support/listings.ts as root`);
    const rs = fixtureRuleset(f);
    const diffs: string[] = [];
    for (const t of f.tables)
      for (const a of argSets(t, f.chains[t]).filter((x) => x.includes('-L'))) {
        const mine = ours(rs, a, namesOf(cap));
        if (mine !== cap.outputs[a.join(' ')]) diffs.push(`iptables ${a.join(' ')}\n--- kernel\n${cap.outputs[a.join(' ')]}--- podtables\n${mine}`);
      }
    assert.deepEqual(diffs, []);
  });
}

test('counters take the short form iptables prints: rounded to K, M, G at each step above 99999', () => {
  // values and their forms as the kernel listed them in the fixtures
  assert.equal(formatCount(99999, false), '99999 ');
  assert.equal(formatCount(100000, false), ' 100K ');
  assert.equal(formatCount(1234567, false), '1235K ');
  assert.equal(formatCount(98765432, false, false), '99M ');
  assert.equal(formatCount(12345678901, false), '  12G ');
  assert.equal(formatCount(12345678901, true), '12345678901 ');
  assert.equal(formatCount(5, true), '       5 ');
});

test('addresses list as anywhere, a host name without -n, and a dotted mask when it has holes', () => {
  const c = (s: string) => parseCidr(s, 'ipv4') as Cidr;
  const hosts = new Map([['127.0.0.0', 'loopback']]);
  assert.equal(listAddress(undefined, 'ipv4', false), 'anywhere');
  assert.equal(listAddress(undefined, 'ipv6', true), '::/0');
  assert.equal(listAddress(c('127.0.0.0/8'), 'ipv4', false, { hosts }), 'loopback/8');
  assert.equal(listAddress(c('127.0.0.0/8'), 'ipv4', true, { hosts }), '127.0.0.0/8');
  assert.equal(listAddress(c('10.1.2.3/255.255.0.255'), 'ipv4', true), '10.1.0.3/255.255.0.255');
  assert.equal(listAddress(c('10.1.2.3/32'), 'ipv4', true), '10.1.2.3');
  // ip6tables looks at the address only: ::/16 is anywhere unless -n, where 0.0.0.0/1 stays default/1
  const v6 = parseCidr('::/16', 'ipv6') as Cidr;
  assert.equal(listAddress(v6, 'ipv6', false), 'anywhere');
  assert.equal(listAddress(v6, 'ipv6', true), '::/16');
  assert.equal(listAddress(c('0.0.0.0/1'), 'ipv4', false, { hosts: new Map([['0.0.0.0', 'default']]) }), 'default/1');
});

test('[goto] comes before the match text, as the kernel prints it', () => {
  const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n:U - [0:0]\n-A INPUT -p tcp -m tcp --sport 1:1024 -g U\nCOMMIT\n').ruleset;
  assert.equal(listRuleOptions(rs.tables[0].chains[0].rules[0], { family: 'ipv4', numeric: true }), '[goto]  tcp spts:1:1024');
});

test('a long target name widens its column and pushes the rest of the line right', () => {
  const rs = parseRestore('*filter\n:INPUT ACCEPT [0:0]\n:A_VERY_LONG_CHAIN - [0:0]\n-A INPUT -j A_VERY_LONG_CHAIN\nCOMMIT\n').ruleset;
  const line = listRuleset(rs, { table: 'filter', chain: 'INPUT', numeric: true, verbose: false, exact: false, lineNumbers: false }).split('\n')[2];
  assert.equal(line, 'A_VERY_LONG_CHAIN  0    --  0.0.0.0/0            0.0.0.0/0           ');
});
