/**
 * What limit, recent, set, pkttype, physdev, length, ttl, hl, sctp and policy do to packets, read
 * through the real rule parser. Where a count is asserted it is the count the kernel's rule
 * counters showed for the same packets in a namespace (ping over lo and over a veth pair).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Family } from '../../src/model/addr';
import type { Packet } from '../../src/model/packet';
import type { Hook } from '../../src/model/ruleset';
import { getMatch } from '../../src/extensions/index';
import type { EvalContext } from '../../src/extensions/types';
import { ip, testContext, testMatcher, testPacket } from '../support/eval';
import { parseRestore } from '../../src/syntax/restore';
import { formatRate, parseRate } from '../../src/extensions/limit';

const packet = testPacket;

/** A context with real per-key state and a clock the test moves (`now`, in ms). */
const context = (opts: { hook?: Hook; family?: Family; broadcast?: bigint[] } = {}) =>
  testContext({
    family: opts.family ?? 'ipv4',
    hook: opts.hook ?? 'INPUT',
    addrType: (a: bigint) => new Set([opts.broadcast?.includes(a) ? 'BROADCAST' : 'UNICAST']),
  });

/** Every match of the rule `-A VEC <spec>`, as one evaluator over packets. */
const rule = (spec: string, family: Family = 'ipv4') => testMatcher(spec, family);

const count = (m: ReturnType<typeof rule>, ps: Packet[], ctx: EvalContext) => ps.filter((p) => m(p, ctx) === true).length;

test('limit lets the burst through at once, then one packet per period', () => {
  const ctx = context();
  const m = rule('-m limit --limit 1/hour --limit-burst 3');
  // kernel: 13 pings within a few ms, 3 counted by this rule
  assert.equal(count(m, Array.from({ length: 13 }, () => packet()), ctx), 3);
  ctx.now += 3_599_000;
  assert.equal(m(packet(), ctx), false, 'the bucket is not yet refilled by one packet');
  ctx.now += 1_000;
  assert.equal(m(packet(), ctx), true);
  assert.equal(m(packet(), ctx), false);
});

test('limit refills no more than the burst after a long pause', () => {
  const ctx = context();
  const m = rule('-m limit --limit 10/sec --limit-burst 2');
  assert.equal(count(m, [packet(), packet(), packet()], ctx), 2);
  ctx.now += 86_400_000;
  assert.equal(count(m, [packet(), packet(), packet()], ctx), 2);
});

test('limit keeps one bucket per rule', () => {
  const ctx = context();
  const a = rule('-m limit --limit 1/min --limit-burst 1');
  const b = rule('-m limit --limit 1/min --limit-burst 1');
  assert.equal(a(packet(), ctx), true);
  assert.equal(b(packet(), ctx), true);
  assert.equal(a(packet(), ctx), false);
});

test('a saved limit rate reads back to the same text', () => {
  // only periods a rate text can give: the kernel holds nothing else (34560001, for one, prints as
  // 24/day, which reads back as 36000000 and prints as 1/hour)
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom('second', 'minute', 'hour', 'day'), (n, unit) => {
      const text = formatRate(parseRate(`${n}/${unit}`));
      assert.equal(formatRate(parseRate(text)), text);
    }),
  );
});

test('recent: set, update and rcheck with hit counts count what the kernel counted', () => {
  const ctx = context();
  const check = rule('-p icmp -m recent --rcheck --hitcount 3 --name X');
  const update = rule('-p icmp -m recent --update --seconds 100 --hitcount 2 --name X');
  const set = rule('-p icmp -m recent --set --name X');
  const hits = [0, 0, 0];
  for (let k = 0; k < 7; k++) {
    const p = packet();
    [check, update, set].forEach((m, i) => (hits[i] += m(p, ctx) === true ? 1 : 0));
    ctx.now += 10;
  }
  // kernel counters for 7 echo requests from 127.0.0.1 through these three rules
  assert.deepEqual(hits, [4, 5, 7]);
});

test('recent lists are shared by name across rules and kept apart by name', () => {
  const ctx = context();
  rule('-m recent --set --name A')(packet({ src: ip('10.0.0.9') }), ctx);
  assert.equal(rule('-m recent --rcheck --name A')(packet({ src: ip('10.0.0.9') }), ctx), true);
  assert.equal(rule('-m recent --rcheck --name B')(packet({ src: ip('10.0.0.9') }), ctx), false);
  assert.equal(rule('-m recent --rcheck --name A')(packet({ src: ip('10.0.0.8') }), ctx), false);
  assert.equal(rule('-m recent ! --rcheck --name A')(packet({ src: ip('10.0.0.8') }), ctx), true);
});

test('recent --seconds forgets hits older than the window', () => {
  const ctx = context();
  rule('-m recent --set --name W')(packet(), ctx);
  const m = rule('-m recent --rcheck --seconds 60 --name W');
  ctx.now = 59_000;
  assert.equal(m(packet(), ctx), true);
  ctx.now = 61_000;
  assert.equal(m(packet(), ctx), false);
});

test('recent --remove deletes the entry and matches once', () => {
  const ctx = context();
  rule('-m recent --set --name R')(packet(), ctx);
  const rm = rule('-m recent --remove --name R');
  assert.equal(rm(packet(), ctx), true);
  assert.equal(rm(packet(), ctx), false);
  assert.equal(rule('-m recent --rcheck --name R')(packet(), ctx), false);
});

test('recent --rdest with --mask keys the list by the masked destination', () => {
  const ctx = context();
  rule('-m recent --set --rdest --mask 255.255.255.0 --name D')(packet({ dst: ip('192.0.2.7') }), ctx);
  const m = rule('-m recent --rcheck --rdest --mask 255.255.255.0 --name D');
  assert.equal(m(packet({ dst: ip('192.0.2.200') }), ctx), true);
  assert.equal(m(packet({ dst: ip('192.0.3.7') }), ctx), false);
});

test('recent --rttl needs the TTL the address was recorded with', () => {
  const ctx = context();
  rule('-m recent --set --name T')(packet({ ttl: 60 }), ctx);
  const m = rule('-m recent --rcheck --rttl --name T');
  assert.equal(m(packet({ ttl: 60 }), ctx), true);
  assert.equal(m(packet({ ttl: 61 }), ctx), false);
  assert.equal(rule('-m recent --rcheck --name T')(packet({ ttl: 61 }), ctx), true);
});

test('set membership is undecided: the members live in the kernel', () => {
  const r = rule('-m set --match-set pt_a src');
  const res = r(packet(), context());
  assert.equal(typeof res, 'object');
  assert.match((res as { undecided: string }).undecided, /pt_a/);
});

test('pkttype classes packets as the kernel did on lo and on a veth pair', () => {
  const bcast = ip('10.9.0.255');
  const cases: [Partial<Packet>, Hook, string][] = [
    [{ dst: ip('10.9.0.2'), inInterface: 'veth0' }, 'INPUT', 'unicast'],
    [{ dst: bcast, inInterface: 'veth0' }, 'INPUT', 'broadcast'],
    [{ dst: ip('255.255.255.255'), inInterface: 'veth0' }, 'INPUT', 'broadcast'],
    [{ dst: ip('224.0.0.1'), inInterface: 'veth0' }, 'INPUT', 'multicast'],
    // sent: PACKET_HOST in OUTPUT and POSTROUTING whatever the destination
    [{ dst: bcast, inInterface: undefined, outInterface: 'veth0' }, 'OUTPUT', 'unicast'],
    [{ dst: ip('224.0.0.1'), inInterface: undefined, outInterface: 'veth0' }, 'POSTROUTING', 'unicast'],
    // over lo everything is PACKET_HOST, 127.255.255.255 and groups included
    [{ dst: ip('127.255.255.255'), inInterface: 'lo' }, 'INPUT', 'unicast'],
    [{ dst: ip('224.0.0.1'), inInterface: 'lo' }, 'INPUT', 'unicast'],
  ];
  for (const [over, hook, want] of cases) {
    const ctx = context({ hook, broadcast: [bcast] });
    for (const t of ['unicast', 'broadcast', 'multicast'])
      assert.equal(rule(`-m pkttype --pkt-type ${t}`)(packet(over), ctx), t === want, `${JSON.stringify(over.dst?.toString())} at ${hook} is ${want}, not ${t}`);
    assert.equal(rule(`-m pkttype ! --pkt-type ${want}`)(packet(over), ctx), false);
  }
  const six = context({ family: 'ipv6' });
  assert.equal(rule('-m pkttype --pkt-type multicast', 'ipv6')(packet({ family: 'ipv6', dst: ip('ff02::1'), inInterface: 'veth0' }), six), true);
});

test('physdev on a packet that crossed no bridge matches only negated options', () => {
  const ctx = context();
  assert.equal(rule('-m physdev ! --physdev-is-bridged')(packet(), ctx), true);
  assert.equal(rule('-m physdev ! --physdev-in eth0 ! --physdev-is-in')(packet(), ctx), true);
  assert.equal(rule('-m physdev --physdev-is-in')(packet(), ctx), false);
  assert.equal(rule('-m physdev ! --physdev-in eth0 --physdev-is-in')(packet(), ctx), false);
  assert.equal(rule('-m physdev --physdev-out veth+')(packet(), ctx), false);
});

test('length compares the whole IP length, a reversed range never matching', () => {
  const ctx = context();
  // kernel: 56-byte pings are 84 bytes long
  assert.equal(rule('-m length --length 84')(packet({ length: 84 }), ctx), true);
  assert.equal(rule('-m length --length 85:')(packet({ length: 84 }), ctx), false);
  assert.equal(rule('-m length ! --length 85:')(packet({ length: 84 }), ctx), true);
  assert.equal(rule('-m length --length :84')(packet({ length: 84 }), ctx), true);
  assert.equal(rule('-m length --length 90:80')(packet({ length: 84 }), ctx), false);
  assert.equal(rule('-m length --length 40:60', 'ipv6')(packet({ family: 'ipv6', length: 60 }), context({ family: 'ipv6' })), true);
});

test('ttl and hl compare equal, not equal, less and greater', () => {
  const cases: [string, number, boolean][] = [
    ['--ttl-eq 5', 5, true], ['--ttl-eq 5', 6, false], ['! --ttl-eq 5', 6, true], ['! --ttl-eq 5', 5, false],
    ['--ttl-lt 5', 4, true], ['--ttl-lt 5', 5, false], ['--ttl-gt 5', 6, true], ['--ttl-gt 5', 5, false],
  ];
  for (const [opts, ttl, want] of cases) {
    assert.equal(rule(`-m ttl ${opts}`)(packet({ ttl }), context()), want, `ttl ${ttl}: ${opts}`);
    const hl = opts.replace(/ttl/g, 'hl');
    assert.equal(rule(`-m hl ${hl}`, 'ipv6')(packet({ family: 'ipv6', ttl }), context({ family: 'ipv6' })), want, `hl ${ttl}: ${hl}`);
  }
});

test('sctp matches ports of SCTP packets and leaves chunks undecided', () => {
  const ctx = context();
  const sctp = (over: Partial<Packet>) => packet({ protocol: 132, sport: 5000, dport: 80, ...over });
  assert.equal(rule('-p sctp --dport 80')(sctp({}), ctx), true);
  assert.equal(rule('-p sctp --dport 81')(sctp({}), ctx), false);
  assert.equal(rule('-p sctp ! --dport 81 --sport 4000:6000')(sctp({}), ctx), true);
  assert.equal(rule('-p sctp -m sctp ! --sport 4000:6000')(sctp({}), ctx), false);
  assert.equal(rule('-p sctp --dport 80')(sctp({ fragment: true }), ctx), false);
  assert.equal(getMatch('sctp')!.match!({ dport: { min: 80, max: 80, invert: false } }, packet({ protocol: 6, dport: 80 }), ctx), false);
  const chunks = rule('-p sctp --dport 80 --chunk-types any INIT')(sctp({}), ctx);
  assert.equal(typeof chunks, 'object');
  assert.equal(rule('-p sctp --dport 81 --chunk-types any INIT')(sctp({}), ctx), false, 'ports are decided before chunks');
});

test('policy: packets carry no IPsec policy, which only --pol none matches', () => {
  const ctx = context();
  // kernel: plain pings count on `--pol none` and never on `--pol ipsec`
  assert.equal(rule('-m policy --dir in --pol none')(packet(), ctx), true);
  assert.equal(rule('-m policy --dir in --pol ipsec')(packet(), ctx), false);
  assert.equal(rule('-m policy --dir out --pol ipsec --strict --proto esp')(packet(), context({ hook: 'OUTPUT' })), false);
});

test('limit refuses what xt_limit refuses: a zero burst and a period × burst past 32 bits', () => {
  const errors = (spec: string) =>
    parseRestore(`*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT ${spec}\nCOMMIT\n`, { family: 'ipv4' })
      .issues.filter((i) => i.severity === 'error').map((i) => i.message);
  // iptables-legacy fails these at commit; iptables-nft keeps them as native nft limits
  assert.match(errors('-m limit --limit-burst 0').join(), /Overflow/);
  assert.match(errors('-m limit --limit 1/hour --limit-burst 1194').join(), /Overflow, try lower: 36000000\/1194/);
  assert.match(errors('-m limit --limit 1/day').join(), /Overflow/);
  assert.deepEqual(errors('-m limit --limit 1/hour --limit-burst 1193'), []);
});
