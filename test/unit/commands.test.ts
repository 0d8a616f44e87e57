/** Reading iptables command lines from scripts, write-ups and `iptables -S` output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommands, shellSplit } from '../../src/syntax/commands';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import { printS } from '../../src/syntax/rules-s';
import { FIXTURES, fixtureRuleset } from '../support/listings';
import type { Issue } from '../../src/model/issue';

const errors = (r: { issues: Issue[] }): Issue[] => r.issues.filter((i) => i.severity === 'error');

test('a script with sudo, paths, continuations, comments and quotes builds the same rules as iptables-restore', () => {
  const script = [
    '#!/bin/sh',
    '# Linkerd-style redirect',
    'sudo iptables -t nat -N PROXY_INIT_REDIRECT',
    "/usr/sbin/iptables -t nat -A PROXY_INIT_REDIRECT -p tcp \\",
    "    --match multiport --dports 4190,4191 -j RETURN -m comment --comment 'ignore # ports'",
    'iptables-nft -t nat -A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-port 4143   # to the proxy',
    '',
    'iptables-legacy -t nat -A PREROUTING -j PROXY_INIT_REDIRECT -m comment --comment "proxy init"',
  ].join('\n');
  const r = parseCommands(script);
  assert.deepEqual(errors(r), []);
  const want = parseRestore([
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':PROXY_INIT_REDIRECT - [0:0]',
    '-A PREROUTING -m comment --comment "proxy init" -j PROXY_INIT_REDIRECT',
    '-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -m comment --comment "ignore # ports" -j RETURN',
    '-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143', 'COMMIT', ''].join('\n'));
  assert.deepEqual(errors(want), []);
  assert.equal(saveRuleset(r.ruleset), saveRuleset(want.ruleset));
  // rules remember the line the command started on
  assert.equal(r.ruleset.tables[0].chains.find((c) => c.name === 'PROXY_INIT_REDIRECT')!.rules[0].line, 4);
});

test('a shell variable for the program is an error naming the token and its place', () => {
  const r = parseCommands('iptables -N X\n  $IPT -A X -j ACCEPT\n');
  const e = errors(r);
  assert.equal(e.length, 1);
  assert.match(e[0].message, /`\$IPT'/);
  assert.deepEqual([e[0].line, e[0].column], [2, 3]);
});

test('an option error points at the token on its own line of a continued command', () => {
  const r = parseCommands('iptables -A INPUT \\\n  -p tcp --dport 99999 -j ACCEPT\n');
  const e = errors(r);
  assert.equal(e.length, 1);
  assert.equal(e[0].line, 2);
  assert.ok(e[0].column! > 1, 'column inside the second line');
});

test('bare -S output reads back into the ruleset it was printed from (every fixture table)', () => {
  for (const f of FIXTURES) {
    const rs = fixtureRuleset(f);
    for (const t of f.tables) {
      // the family comes from the addresses, as bare -S output names no program
      const r = parseCommands(printS(rs, { table: t, counters: true }), { table: t });
      assert.equal(r.ruleset.family, f.family);
      assert.deepEqual(errors(r), [], `${f.name} ${t}`);
      assert.equal(saveRuleset(r.ruleset, { counters: true }), saveRuleset(rs, { counters: true, table: t }), `${f.name} ${t}`);
    }
  }
});

test('ip6tables lines in an IPv4 script are skipped with a warning; an ip6tables-only script is IPv6', () => {
  const mixed = parseCommands('iptables -A INPUT -s 10.0.0.1 -j DROP\nip6tables -A INPUT -s ::1 -j DROP\n');
  assert.equal(mixed.ruleset.family, 'ipv4');
  assert.deepEqual(mixed.issues.map((i) => [i.code, i.line]), [['other-family', 2]]);
  const v6 = parseCommands('ip6tables -A INPUT -s 2001:db8::1 -j DROP\n');
  assert.equal(v6.ruleset.family, 'ipv6');
  assert.match(saveRuleset(v6.ruleset), /-A INPUT -s 2001:db8::1\/128 -j DROP/);
});

test('other commands are skipped with a warning; `|| true` and redirections are ignored silently', () => {
  const r = parseCommands('modprobe br_netfilter\niptables -N X 2>/dev/null || true\niptables -A X -j RETURN >/dev/null 2>&1; echo done\n');
  assert.deepEqual(errors(r), []);
  assert.deepEqual(r.issues.map((i) => [i.code, i.line]), [['not-iptables', 1], ['not-iptables', 3]]);
  assert.equal(r.ruleset.tables[0].chains.find((c) => c.name === 'X')!.rules.length, 1);
});

test('commands run in order against the tables, so a rule before its chain exists fails as in a shell', () => {
  const r = parseCommands('iptables -A LATER -j ACCEPT\niptables -N LATER\n');
  assert.deepEqual(errors(r).map((e) => [e.code, e.line]), [['no-chain', 1]]);
});

test('shell words: single quotes are literal, double quotes take backslash escapes, # inside a word is not a comment', () => {
  const { segments } = shellSplit(`a 'b c\\' "d \\"e\\"" f#g # h`);
  assert.deepEqual(segments[0].map((w) => w.text), ['a', 'b c\\', 'd "e"', 'f#g']);
});

test('an unterminated quote is an error at the quote', () => {
  const r = parseCommands('iptables -A INPUT -m comment --comment "oops\n');
  assert.deepEqual(errors(r).map((e) => [e.code, e.line, e.column]), [['bad-quote', 1, 40]]);
});

test('combined flags as getopt reads them (-nvL, -vnL INPUT) are listing commands that change nothing', () => {
  const r = parseCommands('iptables -N X\niptables -nvL INPUT\nsudo iptables -t nat -vnL --line-numbers\n');
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.ruleset.tables.map((t) => t.name), ['nat', 'filter']);
});

test('-I, -D, -R, -F, -X, -E and -P change the tables the way iptables runs them, in order', () => {
  const r = parseCommands([
    'iptables -P FORWARD DROP',
    'iptables -N OLD',
    'iptables -A INPUT -s 10.0.0.1 -j ACCEPT',
    'iptables -A INPUT -s 10.0.0.2 -j ACCEPT',
    'iptables -I INPUT -s 10.0.0.3 -j DROP',
    'iptables -I INPUT 2 -s 10.0.0.4 -j DROP',
    'iptables -D INPUT -s 10.0.0.1 -j ACCEPT',
    'iptables -R INPUT 1 -s 10.0.0.5 -j DROP',
    'iptables -N GONE',
    'iptables -A GONE -j RETURN',
    'iptables -F GONE',
    'iptables -X GONE',
    'iptables -E OLD NEW',
  ].join('\n'));
  assert.deepEqual(r.issues, []);
  assert.equal(printS(r.ruleset, { table: 'filter' }), [
    '-P INPUT ACCEPT', '-P FORWARD DROP', '-P OUTPUT ACCEPT', '-N NEW',
    '-A INPUT -s 10.0.0.5/32 -j DROP', '-A INPUT -s 10.0.0.4/32 -j DROP', '-A INPUT -s 10.0.0.2/32 -j ACCEPT', ''].join('\n'));
});

test('an empty chain name clashes with the standard target, as iptables says for -N "" (both backends, 1.8.9)', () => {
  const errs = errors(parseRestore('*nat\n-N ""\nCOMMIT\n', { family: 'ipv4' }));
  assert.equal(errs.length, 1);
  assert.match(errs[0].message, /chain name may not clash with target name/);
  assert.equal(errs[0].line, 2);
  assert.match(errors(parseCommands('iptables -t nat -N ""\n'))[0].message, /chain name may not clash with target name/);
});
