/** The human form of a trace: one line a step, then where the packet ended and why. */
import { endpoint, type Step, type Trace } from './trace';

function stepLine(s: Step): string {
  const where = `${s.table} ${s.chain}`.padEnd(28);
  let what: string;
  if (s.kind === 'policy') what = `policy ${s.verdict}`;
  else if (s.kind === 'return') what = 'end of chain: return';
  else what = `#${s.rule} ${s.verdict}${s.verdict === 'JUMP' || s.verdict === 'GOTO' ? ` ${s.target}` : ''}  ${s.text}`;
  let line = `  ${where} ${what}`;
  if (s.packet) line += `\n  ${''.padEnd(28)}   → now ${s.packet.proto} ${endpoint(s.packet.src, s.packet.sport, s.packet.proto)} -> ${endpoint(s.packet.dst, s.packet.dport, s.packet.proto)}${s.packet.mark !== '0x0' ? ` mark ${s.packet.mark}` : ''}`;
  for (const n of s.notes ?? []) line += `\n  ${''.padEnd(28)}   note: ${n}`;
  return line;
}

/** The trace as text: steps with the hook they ran at, routing events, the result. */
export function formatTrace(t: Trace): string {
  const out: string[] = [];
  let hook = '';
  let pathAt = 0;
  t.steps.forEach((s, i) => {
    // routing events go where they happened, between the steps
    for (; pathAt < t.path.length && t.pathIndex[pathAt] <= i; pathAt++) out.push(`  · ${t.path[pathAt]}`);
    if (s.hook !== hook) {
      hook = s.hook;
      out.push(`${s.hook}:`);
    }
    out.push(stepLine(s));
  });
  for (; pathAt < t.path.length; pathAt++) out.push(`  · ${t.path[pathAt]}`);
  const r = t.result;
  const pkt = `${endpoint(r.packet.src, r.packet.sport)} -> ${endpoint(r.packet.dst, r.packet.dport)}`;
  out.push(`=> ${r.disposition.toUpperCase()}: ${r.reason} [${pkt}]`);
  if (t.probability !== 1) out.push(`   probability ${+t.probability.toFixed(6)}`);
  for (const a of t.assumptions) out.push(`   assumed: ${a}`);
  return out.join('\n');
}
