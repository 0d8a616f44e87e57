/** The Linkerd generator, flag validation, the apply/remove/verify planners and small kernel-side helpers, without root. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CHART_DEFAULT_ARGS, MULTIPORT_MAX_PORTS, linkerdPlan, linkerdRuleset, multiportChunks, validateLinkerdFlags,
  type LinkerdFlags, type LinkerdOptions, type PortSpan,
} from '../../src/mesh/linkerd';
import { saveRuleset } from '../../src/syntax/save';
import { parseRestore } from '../../src/syntax/restore';
import { getTable, type Rule, type Table } from '../../src/model/ruleset';
import { diffOwnedChains, planApply, planFresh, planRemove } from '../../src/kernel/apply';
import { binaries, holdsRules } from '../../src/kernel/backend';
import { decodeSockaddr } from '../../src/kernel/proxy';

const opts = (f: LinkerdFlags): LinkerdOptions => {
  const r = validateLinkerdFlags(f);
  assert.ok(r.options, JSON.stringify(r.issues));
  return r.options;
};

// Read back with iptables-save 1.8.9 (legacy and nft gave the same bytes) after running upstream
// proxy-init's own iptables commands for these flags in a namespace, `#` lines removed.
const KERNEL_V4 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:PROXY_INIT_OUTPUT - [0:0]
:PROXY_INIT_REDIRECT - [0:0]
-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT
-A OUTPUT -m comment --comment "proxy-init/install-proxy-init-output" -j PROXY_INIT_OUTPUT
-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment "proxy-init/ignore-proxy-user-id" -j RETURN
-A PROXY_INIT_OUTPUT -m owner --gid-owner 2102 -m comment --comment "proxy-init/ignore-proxy-group-id" -j RETURN
-A PROXY_INIT_OUTPUT -o lo -m comment --comment "proxy-init/ignore-loopback" -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -m comment --comment "proxy-init/redirect-all-outgoing-to-proxy-port" -j REDIRECT --to-ports 4140
-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,4567:4568 -m comment --comment "proxy-init/ignore-port-4190,4191,4567:4568" -j RETURN
-A PROXY_INIT_REDIRECT -s 10.0.0.0/8 -m comment --comment "proxy-init/ignore-subnet-10.0.0.0/8" -j RETURN
-A PROXY_INIT_REDIRECT -p tcp -m tcp --dport 8080 -m comment --comment "proxy-init/redirect-port-8080-to-proxy-port" -j REDIRECT --to-ports 4143
COMMIT
`;
const UPSTREAM_FLAGS: LinkerdFlags = {
  incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: '2102', proxyGid: '2102', portsToRedirect: ['8080'],
  inboundPortsToIgnore: ['4190,4191,4567-4568'], subnetsToIgnore: ['10.0.0.0/8', 'fd00::0/8'],
};

test('generates the nat table upstream proxy-init leaves, byte for byte as the kernel prints it', () => {
  assert.equal(saveRuleset(linkerdRuleset(opts(UPSTREAM_FLAGS), 'ipv4')), KERNEL_V4);
});

test('sends each ignored subnet to its own family; the comment keeps the subnet as typed', () => {
  const v6 = saveRuleset(linkerdRuleset(opts(UPSTREAM_FLAGS), 'ipv6'));
  assert.match(v6, /-A PROXY_INIT_REDIRECT -s fd00::\/8 -m comment --comment "proxy-init\/ignore-subnet-fd00::0\/8" -j RETURN/);
  assert.doesNotMatch(v6, /10\.0\.0\.0/);
  assert.doesNotMatch(saveRuleset(linkerdRuleset(opts(UPSTREAM_FLAGS), 'ipv4')), /fd00/);
});

const commentOf = (r: Rule): string => {
  const m = r.matches.at(-1)!;
  return m.kind === 'match' ? (m.info as { comment: string }).comment : '';
};

test('redirects all inbound TCP when no port is listed, after the ignore rules', () => {
  const o = opts({ incomingProxyPort: '4143', outgoingProxyPort: '4140', inboundPortsToIgnore: ['4191'] });
  const [redirect, output] = linkerdPlan(o, 'ipv4').chains;
  assert.deepEqual(redirect.rules.map((r) => commentOf(r)), [
    'proxy-init/ignore-port-4191', 'proxy-init/redirect-all-incoming-to-proxy-port',
  ]);
  // no uid, no gid: the output chain starts with loopback
  assert.deepEqual(output.rules.map((r) => commentOf(r)), [
    'proxy-init/ignore-loopback', 'proxy-init/redirect-all-outgoing-to-proxy-port',
  ]);
});

test('proxy uid and gid of 0 or -1 add no owner rule, as upstream (ids above 0 only)', () => {
  for (const id of ['0', '-1']) {
    const o = opts({ incomingProxyPort: '1', outgoingProxyPort: '2', proxyUid: id, proxyGid: id });
    assert.ok(!linkerdPlan(o, 'ipv4').chains[1].rules.some((r) => r.matches.some((m) => m.name === 'owner')));
  }
});

const slots = (c: PortSpan[]) => c.reduce((n, s) => n + (s.lo === s.hi ? 1 : 2), 0);

test('multiport chunks hold at most 15 slots, a range taking two, in input order, filled greedily', () => {
  const span = fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.nat({ max: 3 })).map(([lo, d]) => ({ lo: Math.min(lo, 65535 - d), hi: Math.min(lo, 65535 - d) + d }));
  fc.assert(
    fc.property(fc.array(span, { maxLength: 120 }), (spans) => {
      const chunks = multiportChunks(spans);
      assert.deepEqual(chunks.flat(), spans);
      for (const c of chunks) assert.ok(c.length > 0 && slots(c) <= MULTIPORT_MAX_PORTS);
      for (let i = 0; i + 1 < chunks.length; i++) assert.ok(slots(chunks[i]) + slots([chunks[i + 1][0]]) > MULTIPORT_MAX_PORTS);
    }),
  );
  const fourteenThenRange = [...Array.from({ length: 14 }, (_, i) => ({ lo: i + 1, hi: i + 1 })), { lo: 100, hi: 200 }];
  assert.deepEqual(multiportChunks(fourteenThenRange).map((c) => c.length), [14, 1]);
});

test('ignored ranges are written L:U in the rule and in its comment', () => {
  const text = saveRuleset(linkerdRuleset(opts({ incomingProxyPort: '1', outgoingProxyPort: '2', outboundPortsToIgnore: ['25-27,23-23'] }), 'ipv4'));
  assert.match(text, /-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 25:27,23 -m comment --comment "proxy-init\/ignore-port-25:27,23" -j RETURN/);
});

test('every invalid value is reported at once, each message naming it', () => {
  const r = validateLinkerdFlags({
    incomingProxyPort: '0', outgoingProxyPort: '65536', proxyUid: 'root', proxyGid: '-7', portsToRedirect: ['80,x'],
    inboundPortsToIgnore: ['9-1', '1:5'], outboundPortsToIgnore: ['70000'], subnetsToIgnore: ['10.1.1.1', '1.2.3.4/40', 'zz::/8'],
  });
  assert.equal(r.options, undefined);
  const msgs = r.issues.map((i) => i.message);
  for (const v of ['"0"', '"65536"', '"root"', '"-7"', '"x"', '"9-1"', '"1:5"', '"70000"', '"10.1.1.1"', '"1.2.3.4/40"', '"zz::/8"'])
    assert.ok(msgs.some((m) => m.includes(v)), `${v} named in ${JSON.stringify(msgs)}`);
  assert.equal(r.issues.length, 11);
});

test('the chart defaults validate', () => {
  const f: LinkerdFlags = {};
  for (let i = 0; i < CHART_DEFAULT_ARGS.length; i += 2) {
    const k = CHART_DEFAULT_ARGS[i].slice(2).replace(/-(.)/g, (_, c: string) => c.toUpperCase()) as keyof LinkerdFlags;
    (f as Record<string, unknown>)[k] = k.endsWith('Ignore') ? [CHART_DEFAULT_ARGS[i + 1]] : CHART_DEFAULT_ARGS[i + 1];
  }
  assert.equal(validateLinkerdFlags(f).issues.length, 0);
});

// ---------------------------------------------------------------------------------------------

const live = (text: string): Table => getTable(parseRestore(text, { family: 'ipv4' }).ruleset, 'nat')!;
const PLAN = linkerdPlan(opts(UPSTREAM_FLAGS), 'ipv4');

test('apply plan: nothing to do when the live table already holds exactly our chains and jumps', () => {
  assert.equal(planApply(live(KERNEL_V4), PLAN, 'ipv4').text, null);
});

test('apply plan: a duplicate jump is deleted, our chains are refilled, other rules are never named', () => {
  const dump = KERNEL_V4.replace('COMMIT', [
    '-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',
    '-A PREROUTING -p udp -j RETURN',
    '-A PROXY_INIT_OUTPUT -p udp -j RETURN',
    'COMMIT',
  ].join('\n'));
  const p = planApply(live(dump), PLAN, 'ipv4');
  const lines = p.text!.trim().split('\n');
  assert.deepEqual(lines.filter((l) => !l.startsWith('-A PROXY_INIT_OUTPUT')), [
    '*nat',
    ':PROXY_INIT_OUTPUT - [0:0]',
    '-D PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',
    'COMMIT',
  ]);
  assert.equal(lines.filter((l) => l.startsWith('-A PROXY_INIT_OUTPUT')).length, PLAN.chains[1].rules.length);
});

test('apply plan: a stale jump with another comment is replaced by ours', () => {
  const dump = KERNEL_V4.replace('"proxy-init/install-proxy-init-output"', '"proxy-init/install-proxy-init-output/1700000000"');
  const p = planApply(live(dump), PLAN, 'ipv4');
  assert.deepEqual(p.actions, ['delete stale jump OUTPUT -> PROXY_INIT_OUTPUT', 'append jump OUTPUT -> PROXY_INIT_OUTPUT']);
});

test('the install-without-reading plan declares our chains with -N and is otherwise the plan for an empty table', () => {
  const fresh = planFresh(PLAN, 'ipv4')!;
  const empty = planApply(undefined, PLAN, 'ipv4');
  assert.equal(fresh.text, empty.text!.replace(':PROXY_INIT_REDIRECT - [0:0]', '-N PROXY_INIT_REDIRECT').replace(':PROXY_INIT_OUTPUT - [0:0]', '-N PROXY_INIT_OUTPUT'));
  assert.deepEqual(fresh.actions, empty.actions);
  // a rule of ours in a built-in chain that is not a jump into our chains may be there without them
  const other = { ...PLAN, jumps: [...PLAN.jumps, { from: 'OUTPUT', rule: live('*nat\n-A OUTPUT -p udp -j RETURN\nCOMMIT\n').chains.find((c) => c.name === 'OUTPUT')!.rules[0] }] };
  assert.equal(planFresh(other, 'ipv4'), null);
  assert.equal(planFresh({ ...PLAN, chains: [], jumps: [] }, 'ipv4'), null);
});

test('remove plan deletes our jumps and chains only; nothing when they are gone', () => {
  const dump = KERNEL_V4.replace('COMMIT', '-A OUTPUT -p udp -j RETURN\nCOMMIT');
  const p = planRemove(live(dump), 'nat', ['PROXY_INIT_REDIRECT', 'PROXY_INIT_OUTPUT'], 'ipv4');
  assert.equal(p.text, [
    '*nat', ':PROXY_INIT_REDIRECT - [0:0]', ':PROXY_INIT_OUTPUT - [0:0]',
    '-D PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',
    '-D OUTPUT -m comment --comment "proxy-init/install-proxy-init-output" -j PROXY_INIT_OUTPUT',
    '-X PROXY_INIT_REDIRECT', '-X PROXY_INIT_OUTPUT', 'COMMIT', '',
  ].join('\n'));
  assert.equal(planRemove(live('*nat\n-A OUTPUT -p udp -j RETURN\nCOMMIT\n'), 'nat', ['PROXY_INIT_REDIRECT'], 'ipv4').text, null);
});

test('verify reports reordered rules, and a missing chain and jump', () => {
  const lines = KERNEL_V4.split('\n');
  const i = lines.findIndex((l) => l.includes('ignore-proxy-user-id'));
  [lines[i], lines[i + 1]] = [lines[i + 1], lines[i]];
  const d = diffOwnedChains(live(lines.join('\n')), PLAN, 'ipv4');
  assert.deepEqual(d.map((x) => x.kind), ['reordered', 'reordered']);
  const empty = diffOwnedChains(live('*nat\nCOMMIT\n'), PLAN, 'ipv4');
  assert.deepEqual(empty.map((x) => x.kind), ['missing-chain', 'missing-chain', 'missing-jump', 'missing-jump']);
});

test('binaries: variants, the ip6tables siblings, and path overrides', () => {
  assert.deepEqual(binaries('nft', 'ipv6'), { variant: 'nft', save: 'ip6tables-nft-save', restore: 'ip6tables-nft-restore' });
  assert.deepEqual(binaries('plain', 'ipv4'), { variant: 'plain', save: 'iptables-save', restore: 'iptables-restore' });
  assert.deepEqual(binaries('legacy', 'ipv6', { bin: '/usr/sbin/iptables-legacy', save: '/usr/sbin/iptables-legacy-save' }), {
    variant: 'custom', save: '/usr/sbin/ip6tables-legacy-save', restore: '/usr/sbin/ip6tables-legacy-restore',
  });
});

test('holdsRules: empty ACCEPT tables hold nothing; a rule, a user chain or a DROP policy do', () => {
  assert.equal(holdsRules('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n'), false);
  assert.equal(holdsRules('*filter\n:INPUT DROP [0:0]\nCOMMIT\n'), true);
  assert.equal(holdsRules('*nat\n:X - [0:0]\nCOMMIT\n'), true);
  assert.equal(holdsRules('*nat\n-A OUTPUT -j RETURN\nCOMMIT\n'), true);
});

test('SO_ORIGINAL_DST answers decode as sockaddr_in and sockaddr_in6', () => {
  const v4 = Buffer.alloc(16);
  v4.writeUInt16LE(2, 0);
  v4.writeUInt16BE(8080, 2);
  v4.set([10, 77, 0, 2], 4);
  assert.deepEqual(decodeSockaddr(v4), { family: 'ipv4', address: '10.77.0.2', port: 8080 });
  const v6 = Buffer.alloc(28);
  v6.writeUInt16LE(10, 0);
  v6.writeUInt16BE(80, 2);
  v6.writeUInt16BE(0xfd77, 8);
  v6.writeUInt16BE(2, 22);
  assert.deepEqual(decodeSockaddr(v6), { family: 'ipv6', address: 'fd77::2', port: 80 });
});
