/**
 * `podtables init/clean/verify linkerd` against the kernel, both backends: the nat table left is
 * the generator's, byte for byte; runs are idempotent; nothing outside our chains changes; bad
 * flags change nothing; a kill at any moment leaves each family as before or fully configured; and
 * concurrent inits wait for the xtables lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { needKernel, restore, save, withNetns, type Backend } from '../support/kernel';
import { groupGone, podtables, spawnPodtables } from '../support/cli';
import { CHART_DEFAULT_ARGS, linkerdRuleset, validateLinkerdFlags, type LinkerdFlags } from '../../src/mesh/linkerd';
import { saveRuleset } from '../../src/syntax/save';
import { createNetns, deleteNetns, uniqueName } from '../../src/kernel/netns';
import { Command } from 'commander';
import { addRuleFlags } from '../../src/cli/init';

const FAMILIES = ['ipv4', 'ipv6'] as const;

/** The generator's nat table for a CLI argument list, parsed by the CLI's own flag definitions. */
function expected(args: readonly string[], family: 'ipv4' | 'ipv6'): string {
  const c = addRuleFlags(new Command().exitOverride().allowUnknownOption());
  c.parse([...args], { from: 'user' });
  const res = validateLinkerdFlags(c.opts() as LinkerdFlags);
  assert.ok(res.options, JSON.stringify(res.issues));
  return saveRuleset(linkerdRuleset(res.options, family));
}

const nat = (ns: string, b: Backend, f: 'ipv4' | 'ipv6') => save(ns, b, f, ['-t', 'nat']);
const all = async (ns: string, b: Backend) => Object.fromEntries(await Promise.all(FAMILIES.map(async (f) => [f, await save(ns, b, f)])));

const LISTED = ['-p', '4143', '-o', '4140', '-u', '2102', '-g', '2103', '-r', '8080,9090', '-r', '7070',
  '--outbound-ports-to-ignore', '1,2,3,4,5,6,7,8,9,10-20,30-40,50,60,70,80-90,100',
  '--subnets-to-ignore', '10.0.0.0/8,fd00::/8', '--subnets-to-ignore', '192.168.1.7/16'];
const MANY = ['-p', '4143', '-o', '4140', '-u', '2102',
  '--inbound-ports-to-ignore', Array.from({ length: 40 }, (_, i) => (i % 3 ? `${1000 + i * 10}` : `${1000 + i * 10}-${1005 + i * 10}`)).join(','),
  '--outbound-ports-to-ignore', '443,6443', '--subnets-to-ignore', '10.0.0.0/8,172.16.0.0/12,2001:db8::/32'];
const FLAG_SETS: Record<string, readonly string[]> = { 'chart defaults': CHART_DEFAULT_ARGS, 'listed ports, gid, mixed subnets': LISTED, '40 ignored ports in chunks': MANY };

const init = (ns: string, b: Backend, args: readonly string[], extra: string[] = []) =>
  podtables(['init', 'linkerd', ...args, '--iptables-mode', b, '--netns', ns, ...extra]);

for (const b of ['legacy', 'nft'] as Backend[]) {
  test(`init linkerd leaves the generator's nat table, both families (${b})`, async (t) => {
    if (!needKernel(t)) return;
    for (const [name, args] of Object.entries(FLAG_SETS)) {
      await withNetns(async (ns) => {
        const r = await init(ns, b, args);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        for (const f of FAMILIES) {
          const dump = await nat(ns, b, f);
          assert.equal(dump, expected(args, f), `${name} (${f})`);
          // the log ends with the kernel's own table, as kubectl logs shows it
          assert.ok(r.stdout.includes(dump), `${name}: the log shows the final ${f} table`);
        }
      }, 'pta');
    }
  });

  test(`init linkerd is idempotent and refills on changed flags, one jump each (${b})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      assert.equal((await init(ns, b, CHART_DEFAULT_ARGS)).code, 0);
      const once = await all(ns, b);
      for (let i = 0; i < 9; i++) {
        const r = await init(ns, b, CHART_DEFAULT_ARGS);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /already configured: nothing changed/);
      }
      assert.deepEqual(await all(ns, b), once, '10 runs leave what 1 run leaves');
      assert.equal((await init(ns, b, LISTED)).code, 0);
      for (const f of FAMILIES) {
        const dump = await nat(ns, b, f);
        assert.equal(dump, expected(LISTED, f));
        assert.equal(dump.split('\n').filter((l) => /^-A (PREROUTING|OUTPUT) .*-j PROXY_INIT_/.test(l)).length, 2);
      }
      // drift: a duplicate jump, a foreign rule in our chain, one of ours gone
      const drift = [
        '*nat',
        '-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',
        '-A PROXY_INIT_OUTPUT -p udp -j RETURN',
        '-D PROXY_INIT_REDIRECT -p tcp -m tcp --dport 7070 -m comment --comment "proxy-init/redirect-port-7070-to-proxy-port" -j REDIRECT --to-ports 4143',
        'COMMIT',
        '',
      ].join('\n');
      assert.equal((await restore(ns, drift, b, 'ipv4', ['--noflush'])).code, 0);
      const v = await podtables(['verify', 'linkerd', ...LISTED, '--iptables-mode', b, '--netns', ns, '--log-format', 'json']);
      assert.equal(v.code, 1, 'verify exits 1 on drift');
      const found = v.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.level === 'warning').map((e) => `${e.family} ${e.msg}`);
      assert.deepEqual(found.sort(), [
        'ipv4 extra jump: -A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT',
        'ipv4 extra: -A PROXY_INIT_OUTPUT -p udp -j RETURN',
        'ipv4 missing: -A PROXY_INIT_REDIRECT -p tcp -m tcp --dport 7070 -m comment --comment "proxy-init/redirect-port-7070-to-proxy-port" -j REDIRECT --to-ports 4143',
      ]);
      assert.equal((await init(ns, b, LISTED)).code, 0);
      assert.equal(await nat(ns, b, 'ipv4'), expected(LISTED, 'ipv4'), 're-init repairs drift');
      const ok = await podtables(['verify', 'linkerd', ...LISTED, '--iptables-mode', b, '--netns', ns]);
      assert.equal(ok.code, 0, ok.stdout);
    }, 'pti');
  });

  test(`with one of our chains already there, the install-without-reading transaction is refused whole and init still ends configured (${b})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      // the kernel fact init relies on: -N of an existing chain fails the whole restore, changing nothing
      const pre = '*nat\n:PROXY_INIT_OUTPUT - [0:0]\n-A PROXY_INIT_OUTPUT -p udp -j RETURN\n-A OUTPUT -p udp --dport 53 -j ACCEPT\nCOMMIT\n';
      assert.equal((await restore(ns, pre, b, 'ipv4', ['--noflush'])).code, 0);
      const before = await nat(ns, b, 'ipv4');
      const { planFresh } = await import('../../src/kernel/apply');
      const { linkerdPlan } = await import('../../src/mesh/linkerd');
      const res = validateLinkerdFlags({ incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: '2102' });
      const fresh = planFresh(linkerdPlan(res.options!, 'ipv4'), 'ipv4')!;
      assert.match(fresh.text!, /^-N PROXY_INIT_REDIRECT$/m);
      const refused = await restore(ns, fresh.text!, b, 'ipv4', ['--noflush']);
      assert.notEqual(refused.code, 0, 'the kernel refuses -N of an existing chain');
      assert.equal(await nat(ns, b, 'ipv4'), before, 'and keeps the table as it was, PROXY_INIT_REDIRECT not created');
      const r = await init(ns, b, CHART_DEFAULT_ARGS, ['--ipv6', 'false']);
      assert.equal(r.code, 0, r.stderr);
      const after = await nat(ns, b, 'ipv4');
      const ours = expected(CHART_DEFAULT_ARGS, 'ipv4').split('\n').filter((l) => l.startsWith('-A '));
      assert.deepEqual(after.split('\n').filter((l) => l.includes('PROXY_INIT_')).filter((l) => l.startsWith('-A ')).sort(), ours.sort(), 'our chains refilled, one jump each');
      assert.match(after, /^-A OUTPUT -p udp -m udp --dport 53 -j ACCEPT$/m, "the user's rule stays");
      assert.doesNotMatch(after, /-p udp -j RETURN/, 'the foreign rule in our chain is gone');
    }, 'ptf');
  });

  test(`a pre-existing ruleset in every table is byte-identical after init, re-init and clean (${b})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      for (const f of FAMILIES) {
        const r = await restore(ns, f === 'ipv4' ? KUBE_LIKE_V4 : KUBE_LIKE_V6, b, f);
        assert.equal(r.code, 0, r.stderr);
      }
      const before = await all(ns, b);
      const withoutOurs = (d: Record<string, string>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.split('\n').filter((l) => !l.includes('PROXY_INIT_')).join('\n')]));
      for (const args of [CHART_DEFAULT_ARGS, LISTED]) {
        assert.equal((await init(ns, b, args)).code, 0);
        const after = await all(ns, b);
        assert.deepEqual(withoutOurs(after), before);
        // our jumps come after the rules that were there (appended)
        assert.match(after.ipv4, /-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n-A PREROUTING -m comment --comment "proxy-init\/install-proxy-init-prerouting"/);
      }
      const c = await podtables(['clean', 'linkerd', '--iptables-mode', b, '--netns', ns]);
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(await all(ns, b), before, 'clean restores every table exactly');
      const again = await podtables(['clean', 'linkerd', '--iptables-mode', b, '--netns', ns]);
      assert.match(again.stdout, /nothing to remove/);
    }, 'ptk');
  });

  test(`invalid flag values exit 2, name the value and change nothing (${b})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      assert.equal((await init(ns, b, CHART_DEFAULT_ARGS)).code, 0);
      const before = await all(ns, b);
      const base = ['-p', '4143', '-o', '4140'];
      const cases: [string[], string][] = [
        [['-p', '0', '-o', '4140'], '"0"'], [['-p', '65536', '-o', '4140'], '"65536"'], [['-p', 'abc', '-o', '4140'], '"abc"'],
        [['-p', '4143'], '--outgoing-proxy-port is required'], [['-p', '4143', '-o', '-5'], '"-5"'], [['-p', '4143', '-o', '4140.5'], '"4140.5"'],
        [[...base, '-u', 'abc'], '"abc"'], [[...base, '-u', '-2'], '"-2"'], [[...base, '-g', '4294967295'], '"4294967295"'],
        [[...base, '-r', '0'], '"0"'], [[...base, '-r', '8080,70000'], '"70000"'], [[...base, '-r', 'http'], '"http"'],
        [[...base, '--inbound-ports-to-ignore', '5-3'], '"5-3"'], [[...base, '--inbound-ports-to-ignore', '1-70000'], '"1-70000"'],
        [[...base, '--outbound-ports-to-ignore', '80:90'], '"80:90"'], [[...base, '--outbound-ports-to-ignore', '443,x'], '"x"'],
        [[...base, '--inbound-ports-to-ignore', '-1'], '"-1"'], [[...base, '--subnets-to-ignore', '10.0.0.0/33'], '"10.0.0.0/33"'],
        [[...base, '--subnets-to-ignore', 'fd00::/129'], '"fd00::/129"'], [[...base, '--subnets-to-ignore', '10.0.0.1'], '"10.0.0.1"'],
        [[...base, '--subnets-to-ignore', '300.0.0.0/8'], '"300.0.0.0/8"'], [[...base, '--subnets-to-ignore', '10.0.0.0/8,nope/8'], '"nope/8"'],
        [[...base, '--log-format', 'xml'], '"xml"'], [[...base, '--log-level', 'loud'], '"loud"'], [[...base, '--ipv6=maybe'], '"maybe"'],
        [[...base, '--timeout-close-wait-secs', '-1'], '"-1"'], [[...base, '--iptables-mode', 'fancy'], '"fancy"'],
      ];
      for (const [args, named] of cases) {
        // --iptables-mode from the case wins over ours: commander keeps the last value
        const r = await podtables(['init', 'linkerd', '--iptables-mode', b, '--netns', ns, ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.stderr}`);
        assert.ok(r.stderr.includes(named), `${args.join(' ')}: message names ${named}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
      const missing = await podtables(['init', 'linkerd', ...base, '--netns', `${ns}-missing`]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /network namespace ".*-missing" not found/);
      // a kernel-side failure (no such binary) is exit 1 with a message, and nothing changed either
      const nobin = await init(ns, b, LISTED, ['--firewall-bin-path', '/nonexistent/iptables']);
      assert.equal(nobin.code, 1, nobin.stderr);
      assert.match(nobin.stderr, /\/nonexistent\/ip6?tables-save/);
      assert.deepEqual(await all(ns, b), before);
    }, 'ptv');
  });

  test(`killing init at random moments leaves each family as before or fully configured, 50 times (${b})`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      const targets = [CHART_DEFAULT_ARGS, LISTED, MANY];
      const want = targets.map((a) => ({ ipv4: expected(a, 'ipv4'), ipv6: expected(a, 'ipv6') }));
      const start = Date.now();
      assert.equal((await init(ns, b, CHART_DEFAULT_ARGS)).code, 0);
      const full = Date.now() - start;
      const outcomes = { before: 0, after: 0 };
      for (let i = 0; i < 50; i++) {
        const k = (i + 1) % targets.length;
        const before = { ipv4: await nat(ns, b, 'ipv4'), ipv6: await nat(ns, b, 'ipv6') };
        const child = await spawnPodtables(['init', 'linkerd', ...targets[k], '--iptables-mode', b, '--netns', ns]);
        await new Promise((r) => setTimeout(r, Math.random() * full * 1.2));
        child.kill('SIGKILL');
        await groupGone(child.pid!);
        for (const f of FAMILIES) {
          const now = await nat(ns, b, f);
          if (now === before[f] && now !== want[k][f]) outcomes.before++;
          else if (now === want[k][f]) outcomes.after++;
          else assert.fail(`iteration ${i} (${f}): neither as before nor fully configured:\n${now}`);
        }
      }
      t.diagnostic(`per-family outcomes over 50 kills: ${outcomes.before} as before, ${outcomes.after} fully configured (one run takes ${full} ms)`);
      assert.ok(outcomes.before > 0 && outcomes.after > 0, 'kills landed both before and after the commit');
    }, 'ptx');
  });
}

test('20 concurrent inits into 20 namespaces all succeed with -w while the xtables lock is held', async (t) => {
  if (!needKernel(t)) return;
  const names = Array.from({ length: 20 }, () => uniqueName('ptc'));
  const holdMs = 1500;
  // flock(1) holding the legacy backend's lock file, as another iptables user would
  const holder = spawn('flock', ['/run/xtables.lock', '-c', `echo held; sleep ${holdMs / 1000}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    for (const n of names) await createNetns(n);
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    const t0 = Date.now();
    const results = await Promise.all(names.map((n) => init(n, 'legacy', CHART_DEFAULT_ARGS, ['-w'])));
    const waited = Date.now() - t0;
    results.forEach((r, i) => assert.equal(r.code, 0, `${names[i]}: ${r.stderr}`));
    for (const n of names) for (const f of FAMILIES) assert.equal(await nat(n, 'legacy', f), expected(CHART_DEFAULT_ARGS, f));
    t.diagnostic(`20 inits finished ${waited} ms after the lock was taken (held for ${holdMs} ms)`);
    assert.ok(waited >= holdMs - 300, 'the inits waited for the lock');
  } finally {
    if (holder.exitCode === null) holder.kill();
    for (const n of names) await deleteNetns(n);
  }
});

test('--iptables-mode auto picks the backend that holds rules and warns when both do', async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    assert.equal((await restore(ns, '*filter\n:INPUT DROP [0:0]\nCOMMIT\n', 'nft')).code, 0);
    const r = await podtables(['init', 'linkerd', ...CHART_DEFAULT_ARGS, '--iptables-mode', 'auto', '--netns', ns, '--ipv6=false']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await nat(ns, 'nft', 'ipv4'), expected(CHART_DEFAULT_ARGS, 'ipv4'));
    assert.doesNotMatch(await save(ns, 'legacy', 'ipv4'), /PROXY_INIT/);
    assert.equal((await restore(ns, '*mangle\n-A PREROUTING -j ACCEPT\nCOMMIT\n', 'legacy')).code, 0);
    const both = await podtables(['verify', 'linkerd', ...CHART_DEFAULT_ARGS, '--iptables-mode', 'auto', '--netns', `/run/netns/${ns}`, '--ipv6=false']);
    assert.equal(both.code, 0, both.stdout + both.stderr);
    assert.match(both.stdout, /level=warning msg="both iptables-legacy and iptables-nft hold rules/);
  }, 'ptu');
});

/** A node-like ruleset in every table: kube-proxy's skeleton plus a filter policy (written for these tests). */
const KUBE_LIKE_V4 = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 8472 -j NOTRACK
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-KUBELET-CANARY - [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-ABC - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-XYZ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-ABC -s 10.244.1.5/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ
-A KUBE-SEP-ABC -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-SVC-XYZ
-A KUBE-SVC-XYZ ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-XYZ -m comment --comment "default/web -> 10.244.1.5:8080" -j KUBE-SEP-ABC
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m multiport --dports 4143,4191,8080 -j ACCEPT
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
`;

const KUBE_LIKE_V6 = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d fd00:10:96::a/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00:10:244::5]:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -j ACCEPT
COMMIT
`;

test('--simulate prints the restore input for the live table and, like verify and clean, changes nothing', async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    const before = await all(ns, 'legacy');
    const r = await podtables(['init', 'linkerd', ...CHART_DEFAULT_ARGS, '--netns', ns, '--simulate', '--ipv6=false']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /would run iptables-legacy-restore --noflush with:" family="ipv4"\n\*nat\n:PROXY_INIT_REDIRECT - \[0:0\]\n/);
    assert.match(r.stdout, /-A OUTPUT -m comment --comment "proxy-init\/install-proxy-init-output" -j PROXY_INIT_OUTPUT\nCOMMIT\n/);
    assert.deepEqual(await all(ns, 'legacy'), before);
    // reading must not create tables either (iptables-legacy-save -t nat would instantiate nat)
    const v = await podtables(['verify', 'linkerd', ...CHART_DEFAULT_ARGS, '--netns', ns]);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /missing chain: PROXY_INIT_REDIRECT/);
    assert.equal((await podtables(['clean', 'linkerd', '--netns', ns])).code, 0);
    assert.deepEqual(await all(ns, 'legacy'), before, 'simulate, verify and clean leave a fresh namespace untouched');
    assert.equal((await init(ns, 'legacy', CHART_DEFAULT_ARGS)).code, 0);
    const again = await podtables(['init', 'linkerd', ...CHART_DEFAULT_ARGS, '--netns', ns, '--simulate', '--ipv6=false']);
    assert.match(again.stdout, /already configured: nothing would change/);
  }, 'pts');
});

test('--timeout-close-wait-secs sets the conntrack timeout in that namespace only', async (t) => {
  if (!needKernel(t)) return;
  const { readFileSync } = await import('node:fs');
  const key = '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait';
  const host = readFileSync(key, 'utf8');
  await withNetns(async (ns) => {
    const r = await init(ns, 'nft', CHART_DEFAULT_ARGS, ['--timeout-close-wait-secs', '7']);
    assert.equal(r.code, 0, r.stderr);
    const { inNetnsOk } = await import('../../src/kernel/netns');
    assert.equal((await inNetnsOk(ns, 'cat', [key])).trim(), '7');
    assert.equal(readFileSync(key, 'utf8'), host);
  }, 'ptw');
});

test('--netns accepts a /proc/PID/ns/net path', async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    const sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const r = await podtables(['init', 'linkerd', ...CHART_DEFAULT_ARGS, '--netns', `/proc/${sleeper.pid}/ns/net`, '--ipv6=false']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await nat(ns, 'legacy', 'ipv4'), expected(CHART_DEFAULT_ARGS, 'ipv4'));
    } finally {
      sleeper.kill();
    }
  }, 'ptq');
});
