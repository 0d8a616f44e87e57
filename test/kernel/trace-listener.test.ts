/**
 * Local deliveries checked against real sockets: Linkerd's rules in a namespace, listeners that read
 * SO_ORIGINAL_DST (src/kernel/proxy.ts), real connections arriving and made locally; the socket that
 * took each connection and the original destination it read must be what the trace says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needKernel } from '../support/kernel';
import { hostA, KernelTracer, withListeners, type Probe } from '../support/trace';
import { LINKERD_RULES } from '../../src/cli/demo';
import { hostFromText, hostToText } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';

const RULES = `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n${LINKERD_RULES}`;
const BINDS = [{ host: '0.0.0.0', port: 4143 }, { host: '127.0.0.1', port: 4140 }, { host: '0.0.0.0', port: 8080 }];

test('the socket that accepts each connection and the SO_ORIGINAL_DST it reads are those of the trace', { timeout: 120_000 }, async (t) => {
  if (!needKernel(t)) return;
  const tracer = await KernelTracer.open({ sinks: false });
  try {
    assert.equal(await tracer.load(RULES), null);
    const probes: Probe[] = [
      { proto: 'tcp', from: 'b', uid: 0, src: '10.99.0.2', sport: 31001, dst: '10.99.0.1', dport: 8080 },
      { proto: 'tcp', from: 'b', uid: 0, src: '10.99.0.2', sport: 31002, dst: '10.99.0.1', dport: 4191 },
      { proto: 'tcp', from: 'a', uid: 1000, src: '10.99.0.1', sport: 31003, dst: '10.99.0.2', dport: 80 },
      { proto: 'tcp', from: 'a', uid: 1000, src: '10.99.0.1', sport: 31004, dst: '10.99.0.1', dport: 8080 },
      { proto: 'tcp', from: 'a', uid: 1000, src: '127.0.0.1', sport: 31005, dst: '127.0.0.1', dport: 8080 },
      { proto: 'tcp', from: 'a', uid: 2102, src: '10.99.0.1', sport: 31006, dst: '10.99.0.1', dport: 8080 },
    ];
    const accepted = await withListeners(tracer, 2102, BINDS, async () => void (await tracer.probe(probes)));
    const host = hostFromText({ ...hostToText(hostA()), sockets: BINDS.map((b) => ({ proto: 'tcp' as const, addr: b.host, port: b.port, uid: 2102 })) });
    const engine = new Engine(host, [parseRestore(RULES, { family: 'ipv4' }).ruleset]);
    let locals = 0;
    for (const p of probes) {
      const tr = engine.trace(parsePacketSpec(`tcp ${p.src}:${p.sport} -> ${p.dst}:${p.dport} ${p.from === 'b' ? 'in veth0' : `uid ${p.uid}`}`));
      const real = accepted.find((a) => a.peerPort === p.sport);
      if (tr.result.disposition === 'local') {
        locals++;
        assert.ok(real, `${p.dst}:${p.dport} from ${p.from}: the trace says ${tr.result.reason}, but no listener accepted it`);
        assert.equal(real.port, tr.result.socket?.port, `${p.dst}:${p.dport}: accepting port`);
        assert.deepEqual(real.orig, tr.result.origDst, `${p.dst}:${p.dport}: SO_ORIGINAL_DST`);
      } else {
        assert.equal(real, undefined, `${p.dst}:${p.dport}: the trace says ${tr.result.disposition}, but port ${real?.port} accepted it`);
      }
    }
    assert.ok(locals >= 4, 'most probes are local deliveries');
  } finally {
    await tracer.close();
  }
});
