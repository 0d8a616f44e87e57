/**
 * Real rulesets (the shared corpus of iptables-save dumps) × real packets, traced by the kernel and
 * by podtables and compared step by step. A case whose trace needed an assumption (a match podtables
 * does not evaluate) is counted apart: there the engine says it guessed, and the kernel may differ.
 */
import { CORPUS_DIR, needShared } from '../support/shared';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { needKernel } from '../support/kernel';
import { comparable, diffEntries, diffSteps, entryText, hostA, KernelTracer, type Probe } from '../support/trace';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';

const CORPUS = process.env.PODTABLES_CORPUS ?? CORPUS_DIR;
const EMPTY_RAW = '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

function dumps(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...dumps(p));
    else if (statSync(p).size < 2_000_000) out.push(p);
  }
  return out.sort();
}

/**
 * Built-in chains the input names (`:CHAIN` or `-A/-I CHAIN`), per table. iptables-nft creates only
 * those (`nft list ruleset` after restoring `*nat` with only POSTROUTING rules shows no INPUT chain,
 * though iptables-nft-save prints one): a missing chain is no hook, so the kernel traces no policy
 * step for it. The model keeps every built-in chain (legacy's view), so those policy steps are set
 * aside here before comparing.
 */
function declaredChains(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let table = '';
  for (const line of text.split('\n')) {
    const t = /^\*\s*(\w+)/.exec(line);
    if (t) out.set((table = t[1]), out.get(t[1]) ?? new Set());
    const c = /^(?::|-[AI]\s+)(\S+)/.exec(line.trim());
    if (c && table) out.get(table)!.add(c[1]);
  }
  return out;
}

const PORTS = [22, 25, 53, 80, 443, 8080];
const probes = (k: number): Probe[] => [
  { proto: 'tcp', from: 'b', uid: 0, src: '10.99.0.2', sport: 30000 + k * 8, dst: '10.99.0.1', dport: PORTS[k % PORTS.length] },
  { proto: 'udp', from: 'b', uid: 0, src: '10.99.0.2', sport: 30001 + k * 8, dst: '10.99.0.1', dport: 53 },
  { proto: 'tcp', from: 'a', uid: 1000, src: '10.99.0.1', sport: 30002 + k * 8, dst: '10.99.0.2', dport: PORTS[(k + 3) % PORTS.length] },
  { proto: 'tcp', from: 'a', uid: 0, src: '127.0.0.1', sport: 30003 + k * 8, dst: '127.0.0.1', dport: 8080 },
  { proto: 'icmp', from: 'b', uid: 0, src: '10.99.0.2', sport: 0, dst: '10.99.0.1', dport: 0 },
];

test('traces through every corpus dump the kernel loads agree with the kernel where podtables decides every rule', { timeout: 30 * 60_000 }, async (t) => {
  if (!needKernel(t)) return;
  if (!needShared(t, CORPUS)) return;
  const tracer = await KernelTracer.open();
  let files = 0, cases = 0, agree = 0, assumed = 0;
  const failures: string[] = [];
  try {
    let k = 0;
    for (const file of dumps(CORPUS)) {
      let text = readFileSync(file, 'utf8');
      if (!/^\*(filter|nat|mangle|raw)\s*$/m.test(text) || /ip6tables|^\*\s+nat/m.test(text)) continue;
      if (!/^\*raw\s*$/m.test(text)) text = EMPTY_RAW + text;
      const parsed = parseRestore(text, { family: 'ipv4' });
      if (parsed.ruleset.family !== 'ipv4' || parsed.issues.some((i) => i.severity === 'error')) continue;
      if (await tracer.load(text)) continue;
      files++;
      const declared = declaredChains(text);
      const ps = probes(k++ % 1000);
      const kernel = await tracer.probe(ps);
      ps.forEach((p, i) => {
        const src = p.proto === 'icmp' ? p.src : `${p.src}:${p.sport}`;
        const dst = p.proto === 'icmp' ? p.dst : `${p.dst}:${p.dport}`;
        const spec = `${p.proto} ${src} -> ${dst} ${p.from === 'b' ? 'in veth0' : `uid ${p.uid}`}`;
        const tr = new Engine(hostA(), [parsed.ruleset], { record: true }).trace(parsePacketSpec(spec));
        if (tr.assumptions.length) return void assumed++;
        cases++;
        const ours = comparable(tr.steps).filter((x) => x.kind !== 'policy' || declared.get(x.table)?.has(x.chain));
        const entries = (tr.entries ?? []).map(entryText).filter((e) => declared.get(e.table)?.has(e.hook));
        const d = diffSteps(ours, kernel[i].steps) ?? diffEntries(entries, kernel[i].entries);
        if (d === null) agree++;
        else failures.push(`${file} ${spec}\n${d}`);
      });
    }
  } finally {
    await tracer.close();
  }
  t.diagnostic(`${files} dumps loaded by the kernel; ${agree}/${cases} decided cases agree; ${assumed} cases needed an assumption`);
  assert.ok(files > 0, 'some corpus dumps load');
  if (process.env.TRACE_DUMP) (await import("node:fs")).writeFileSync(process.env.TRACE_DUMP, failures.join("\n\n=====\n"));
  assert.equal(failures.length, 0, `${failures.length} disagreements; first:\n${failures.slice(0, 2).join('\n\n')}`);
});
