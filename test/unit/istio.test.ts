import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ISTIO_DEFAULTS, istioRules, type IstioOptions } from '../../src/mesh/istio';
import { saveRuleset } from '../../src/syntax/save';
import { goldenByFamily } from '../support/istio-golden';
import { CORPUS_DIR, needShared } from '../support/shared';
import { join } from 'node:path';

const dir = join(CORPUS_DIR, 'istio/tools/istio-iptables/pkg/capture/testdata');

/** The flags of Istio's own capture tests (run_test.go) for the goldens in the shared corpus. */
const CASES: Record<string, Partial<IstioOptions>> = {
  'ip-range': {
    outboundIpRangesExclude: '1.1.0.0/16', outboundIpRangesInclude: '9.9.0.0/16', redirectDns: true,
    proxyGid: '1,2', proxyUid: '3,4', dnsServersV4: ['127.0.0.53'],
  },
  tproxy: {
    interceptionMode: 'TPROXY', inboundPortsInclude: '*', outboundIpRangesExclude: '1.1.0.0/16',
    outboundIpRangesInclude: '9.9.0.0/16', redirectDns: true, dnsServersV4: ['127.0.0.53'], proxyGid: '1337',
    proxyUid: '1337', excludeInterfaces: 'not-istio-nic', ipv6: true,
  },
  'dns-uid-gid': {
    redirectDns: true, dnsServersV4: ['127.0.0.53'], dnsServersV6: ['::127.0.0.53'], proxyGid: '1,2', proxyUid: '3,4', ipv6: true,
  },
  'outbound-owner-groups': { ownerGroupsInclude: 'java,202' },
  'ipnets-with-kube-virt-interfaces': { kubeVirtInterfaces: 'eth1,eth2', outboundIpRangesInclude: '10.0.0.0/8' },
  'inbound-ports-tproxy': { inboundPortsInclude: '32000,31000', interceptionMode: 'TPROXY' },
};
const FIXTURES = new URL('../fixtures/istio/', import.meta.url).pathname;
// Istio's tests resolve group names on the build machine; these stand in for them
const names = { groups: new Map([['1001', 'java']]) };

for (const [name, flags] of Object.entries(CASES)) {
  test(`istio ${name}: the same rules as Istio's golden output for the same flags`, (t) => {
    const file = existsSync(`${FIXTURES}${name}.golden`) ? `${FIXTURES}${name}.golden` : `${dir}/${name}.golden`;
    if (!needShared(t, file)) return;
    const want = goldenByFamily(readFileSync(file, 'utf8'), names);
    const got = istioRules({ ...ISTIO_DEFAULTS, ...flags }, names);
    assert.deepEqual(got.issues.filter((i) => i.severity === 'error'), []);
    assert.equal(saveRuleset(got.v4), want.v4, 'IPv4');
    assert.equal(got.v6 ? saveRuleset(got.v6) : '', want.v6, 'IPv6');
  });
}

test('istio: bad flag values are refused, naming the value', () => {
  const bad: [Partial<IstioOptions>, RegExp][] = [
    [{ proxyPort: '70000' }, /--envoy-port: invalid port "70000"/],
    [{ inboundPortsInclude: '80,http' }, /--istio-inbound-ports: invalid port "http"/],
    [{ outboundIpRangesInclude: '10.0.0.0/33' }, /--istio-service-cidr: invalid CIDR "10.0.0.0\/33"/],
    [{ outboundIpRangesExclude: '*' }, /"\*" is not allowed/],
    [{ proxyUid: 'nobody-here' }, /--proxy-uid: invalid id "nobody-here"/],
    [{ interceptionMode: 'MAGIC' as 'TPROXY' }, /REDIRECT or TPROXY/],
  ];
  for (const [flags, re] of bad) {
    const r = istioRules({ ...ISTIO_DEFAULTS, ...flags });
    assert.ok(r.issues.some((i) => i.severity === 'error' && re.test(i.message)), `${JSON.stringify(flags)} → ${r.issues.map((i) => i.message)}`);
  }
});

test('istio: IPv6 rules only with dual stack, with ::6 and ::1 in place of 127.0.0.6 and 127.0.0.1', () => {
  const v4only = istioRules({ ...ISTIO_DEFAULTS, inboundPortsInclude: '*' });
  assert.equal(v4only.v6, undefined);
  const both = istioRules({ ...ISTIO_DEFAULTS, inboundPortsInclude: '*', ipv6: true });
  const v6 = saveRuleset(both.v6!);
  assert.match(v6, /-A ISTIO_OUTPUT -s ::6\/128 -o lo -j RETURN/);
  assert.match(v6, /-A ISTIO_OUTPUT ! -d ::1\/128 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT/);
  assert.doesNotMatch(v6, /127\.0\.0/);
});
