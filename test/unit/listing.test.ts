/**
 * Importing `iptables -L` listings: the kernel's own listings of the fixtures read back to the
 * fixture wherever the listing says enough, and the real listings of the shared corpus import
 * with the warnings they deserve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, fixtureRuleset, loadCaptured, namesOf, withoutVerbose } from '../support/listings';
import { needShared, SHARED } from '../support/shared';
import { parseListing } from '../../src/syntax/listing';
import { saveRuleset } from '../../src/syntax/save';
import type { TableName } from '../../src/model/ruleset';
import type { Issue } from '../../src/model/issue';

const codes = (issues: Issue[]) => issues.map((i) => i.code);
const errors = (issues: Issue[]) => issues.filter((i) => i.severity === 'error');


for (const f of FIXTURES) {
  test(`the kernel's -L -n -v -x listings of ${f.name} import back to the same ruleset, counters included, without warnings`, () => {
    const cap = loadCaptured(f)!;
    const rs = fixtureRuleset(f);
    for (const t of f.tables)
      for (const extra of [[], ['--line-numbers']]) {
        const key = ['-t', t, '-L', '-n', '-v', '-x', ...extra].join(' ');
        const r = parseListing(cap.outputs[key], { table: t, family: f.family });
        assert.deepEqual(r.issues, [], key);
        assert.equal(saveRuleset(r.ruleset, { counters: true }), saveRuleset(rs, { counters: true, table: t }), key);
      }
  });

  test(`the kernel's named -L listings of ${f.name} (no -n, no -v) import back through the name tables, warning that interfaces are missing`, () => {
    const cap = loadCaptured(f)!;
    const rs = withoutVerbose(fixtureRuleset(f));
    for (const t of f.tables) {
      const key = `-t ${t} -L`;
      const r = parseListing(cap.outputs[key], { table: t, family: f.family, names: namesOf(cap) });
      assert.deepEqual(codes(r.issues), ['listing-no-interfaces'], key);
      assert.equal(saveRuleset(r.ruleset), saveRuleset(rs, { table: t }), key);
    }
  });
}

test('short counters import as rounded values, with one warning per table', () => {
  const f = FIXTURES.find((x) => x.name === 'filter4')!;
  const r = parseListing(loadCaptured(f)!.outputs['-t filter -L -n -v'], { family: 'ipv4' });
  assert.deepEqual(codes(r.issues), ['listing-rounded-counters']);
  const input = r.ruleset.tables[0].chains[0];
  assert.deepEqual(input.counters, { packets: 123000, bytes: 99000000 });
  assert.deepEqual(input.rules[1].counters, { packets: 99999, bytes: 1235000 });
});

test('a host name nobody can resolve skips its rule with a warning at the name; known names need no warning', () => {
  const text = [
    'Chain OUTPUT (policy ACCEPT)',
    'target     prot opt source               destination         ',
    'RETURN     all  --  anywhere             db.internal         ',
    'RETURN     all  --  anywhere             gateway             ',
    'RETURN     all  --  anywhere            !localhost           ',
    '',
  ].join('\n');
  const r = parseListing(text, { table: 'nat', names: { hosts: new Map([['10.0.0.1', 'gateway']]) } });
  assert.deepEqual(r.issues.map((i) => [i.code, i.line, i.column]), [
    ['listing-no-interfaces', 1, 1], ['listing-unresolved', 3, 42], ['listing-assumed-name', 5, 41],
  ]);
  assert.equal(saveRuleset(r.ruleset).split('\n').filter((l) => l.startsWith('-A')).join('\n'),
    '-A OUTPUT -d 10.0.0.1/32 -j RETURN\n-A OUTPUT ! -d 127.0.0.1/32 -j RETURN');
});

test('option text no reverse parser knows is kept as an unknown match with a warning at its column', () => {
  const text = 'Chain INPUT (policy ACCEPT)\ntarget     prot opt source               destination         \nACCEPT     all  --  0.0.0.0/0            0.0.0.0/0            frobnicate level 3\n';
  const r = parseListing(text, {});
  const u = r.issues.find((i) => i.code === 'listing-unknown-option')!;
  assert.equal(u.column, 63);
  assert.deepEqual(r.ruleset.tables[0].chains[0].rules[0].matches, [{ kind: 'unknown', name: 'frobnicate', tokens: ['level', '3'] }]);
});

test('table markers and repeated chain names split a text into tables; a later listing of a chain replaces it', () => {
  const chainBlock = (name: string, rule: string) => `Chain ${name}\ntarget     prot opt source               destination         \n${rule}\n`;
  const text = [
    '# Table: nat',
    'Chain PREROUTING (policy ACCEPT)\ntarget     prot opt source               destination         \nDOCKER     all  --  0.0.0.0/0            0.0.0.0/0           \n',
    chainBlock('DOCKER (1 references)', 'RETURN     all  --  10.0.0.0/8           0.0.0.0/0           '),
    '$ sudo iptables -t nat -L DOCKER -n',
    chainBlock('DOCKER (1 references)', 'RETURN     all  --  10.9.0.0/16          0.0.0.0/0           '),
    'And the filter table:',
    'Chain INPUT (policy DROP)\ntarget     prot opt source               destination         \n',
  ].join('\n');
  const r = parseListing(text, {});
  assert.deepEqual(errors(r.issues), []);
  assert.deepEqual(r.ruleset.tables.map((t) => t.name), ['nat', 'filter']);
  const docker = r.ruleset.tables[0].chains.find((c) => c.name === 'DOCKER')!;
  assert.equal(docker.rules.length, 1);
  assert.equal(saveRuleset(r.ruleset, { table: 'nat' }).includes('-A DOCKER -s 10.9.0.0/16 -j RETURN'), true);
  assert.equal(r.ruleset.tables[1].chains[0].policy, 'DROP');
  assert.ok(codes(r.issues).includes('listing-table-twice'));
});

test('the family is IPv6 when any address says so, even one inside the option text', () => {
  const head = 'Chain PREROUTING (policy ACCEPT)\ntarget     prot opt source               destination         \n';
  const v6 = parseListing(head + 'DNAT       all  --  anywhere             anywhere             to:[2001:db8::1]:8080\n', { table: 'nat' });
  assert.equal(v6.ruleset.family, 'ipv6');
  const mac = parseListing(head + '           all  --  anywhere             anywhere             MAC 00:11:22:33:44:55\n', { table: 'mangle' });
  assert.equal(mac.ruleset.family, 'ipv4');
});

test('text without a Chain header is an error, not an empty ruleset', () => {
  assert.deepEqual(codes(parseListing('hello\n', {}).issues), ['listing-empty']);
});

// The real listings in the shared corpus: each imports, and its warnings are the ones it deserves
const NAMES = { services: new Map([['8080/tcp', 'http-alt']]), users: new Map([['0', 'root'], ['13', 'proxy'], ['65534', 'nobody']]) };
const CORPUS: [string, string, number, Record<string, number>][] = [
  // path, tables, rules, issue codes and counts
  ['corpus/real-world/moby-iptablesdoc/integration/network/bridge/iptablesdoc/generated/new-daemon.md', 'mangle,nat', 12, { 'listing-assumed-name': 1 }],
  ['corpus/real-world/moby-iptablesdoc/integration/network/bridge/iptablesdoc/generated/swarm-portmap.md', 'nat,filter', 27, { 'listing-assumed-name': 1 }],
  ['corpus/real-world/moby-iptablesdoc/integration/network/bridge/iptablesdoc/generated/usernet-portmap-routed.md', 'nat,filter', 18, { 'listing-table-twice': 1, 'listing-assumed-name': 1 }],
  ['corpus/real-world/moby-iptablesdoc/integration/network/bridge/iptablesdoc/generated/usernet-portmap-noproxy.md', 'nat,filter', 22, {}],
  ['corpus/real-world/net-network-listings/blog_a-unikernel-firewall-for-qubesos/iptables_L', 'raw,mangle,nat,filter,security', 33, { 'listing-rounded-counters': 4 }],
  ['corpus/real-world/net-network-listings/config_kornwall/iptables.Lnv', 'filter', 56, {}],
  ['corpus/real-world/net-network-listings/configs_chair_for_Network_Architectures_and_Services/iptables-Lnv-2015-05-13_10-53-20', 'filter', 4822,
    { 'listing-unknown-option': 1639, 'listing-rounded-counters': 1 }],
  ['corpus/real-world/net-network-listings/configs_chair_for_Network_Architectures_and_Services/ip6tables-Lnv-2016-06-27_16-29-01', 'filter', 6203,
    { 'listing-unknown-option': 1959, 'listing-rounded-counters': 1 }],
  ['corpus/real-world/net-network-listings/configs_sqrl_shorewall/2014_sep_akachan-iptables-Ln', 'filter', 413, { 'listing-no-interfaces': 1 }],
  ['corpus/real-world/net-network-listings/configs_tails_os/2015-aug-tails-i386-1.4.1-iptables-Lnv', 'filter', 32, { 'listing-rounded-counters': 1 }],
  ['corpus/real-world/net-network-listings/configs_tails_os/2015-aug-tails-i386-1.4.1-iptables-Lv', 'filter', 32,
    { 'listing-assumed-name': 15, 'listing-unresolved': 19, 'listing-rounded-counters': 1 }],
  ['seeds/iptables-notes-aks-kube-proxy.md', 'filter', 17, { 'listing-rounded-counters': 1 }],
  ['seeds/istio-sidecar-iptables-lab.md', 'nat', 19, { 'listing-no-interfaces': 4, 'listing-assumed-name': 6, 'listing-unresolved': 12, 'listing-table-twice': 3 }],
];

for (const [path, tables, rules, want] of CORPUS) {
  test(`real listing ${path.split('/').slice(-2).join('/')} imports ${rules} rules with the expected warnings`, (t) => {
    const file = join(SHARED, path);
    if (!needShared(t, file)) return;
    const r = parseListing(readFileSync(file, 'utf8'), { names: NAMES });
    const got: Record<string, number> = {};
    for (const i of r.issues) got[i.code] = (got[i.code] ?? 0) + 1;
    assert.deepEqual(got, want);
    assert.equal(r.ruleset.tables.map((x) => x.name).join(','), tables);
    assert.equal(r.ruleset.tables.reduce((n, x) => n + x.chains.reduce((m, c) => m + c.rules.length, 0), 0), rules);
    // every issue is located
    assert.ok(r.issues.every((i) => i.line !== undefined && i.column !== undefined));
  });
}

test('a reversed udp port range in a real listing imports as the kernel keeps it (60000:29)', (t) => {
  const file = join(SHARED, CORPUS[6][0]);
  if (!needShared(t, file)) return;
  const r = parseListing(readFileSync(file, 'utf8'), { names: NAMES });
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  // libxt_udp keeps min > max (the rule then matches nothing); tcp and multiport refuse it
  assert.match(saveRuleset(r.ruleset), /-m udp --dport 60000:29\b/);
});

test('a user name no table knows stays a name, in the form iptables-restore resolves itself', () => {
  const text = 'Chain OUTPUT (policy ACCEPT)\ntarget     prot opt source               destination         \n' +
    'RETURN     all  --  anywhere             anywhere             ! owner UID match istio-proxy\n' +
    'RETURN     tcp  --  anywhere             anywhere             tcp dpt:no-such-service\n';
  const r = parseListing(text, { table: 'nat', names: { users: new Map([['1337', 'someone']]) } });
  assert.deepEqual(codes(r.issues), ['listing-no-interfaces', 'listing-unresolved', 'listing-unresolved']);
  assert.equal(saveRuleset(r.ruleset).split('\n').filter((l) => l.startsWith('-A')).join('\n'),
    '-A OUTPUT -m owner ! --uid-owner istio-proxy -j RETURN\n-A OUTPUT -p tcp -m tcp --dport no-such-service -j RETURN');
  // with the name known, the owner match is the real one
  const known = parseListing(text.split('\n').slice(0, 3).join('\n') + '\n', { table: 'nat', names: { users: new Map([['1337', 'istio-proxy']]) } });
  assert.deepEqual(codes(known.issues), ['listing-no-interfaces']);
  assert.equal(known.ruleset.tables[0].chains[2].rules[0].matches[0].kind, 'match');
});

test('a table named by the caller is used for a listing that does not say', () => {
  const text = 'Chain X (0 references)\ntarget     prot opt source               destination         \nRETURN     all  --  anywhere             anywhere            \n';
  const r = parseListing(text, { table: 'mangle' as TableName });
  assert.deepEqual(r.ruleset.tables.map((x) => x.name), ['mangle']);
});
