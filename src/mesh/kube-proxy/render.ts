/**
 * kube-proxy's iptables-restore input (applied with --noflush): filter then nat, each with the
 * chain lines of the chains it owns and their rules. The jumps from built-in chains are not part
 * of it (kube-proxy installs them with `iptables -I`); `iptables-save` after both shows them.
 */
import type { Chain, TableName } from '../../model/ruleset';
import { specRenderer } from './fast-save';
import type { Generated } from './generate';

const RESTORE_TABLES: TableName[] = ['filter', 'nat'];
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

function chainsOf(gen: Generated, table: TableName): Map<string, Chain> {
  const t = gen.ruleset.tables.find((x) => x.name === table);
  return new Map((t?.chains ?? []).map((c) => [c.name, c]));
}

/** The full restore input of one sync. */
export function renderRestore(gen: Generated): string {
  const spec = specRenderer(gen.ruleset.family);
  const out: string[] = [];
  for (const table of RESTORE_TABLES) {
    const chains = chainsOf(gen, table);
    const names = (gen.order.get(table) ?? []).filter((n) => n !== 'KUBE-PROXY-CANARY');
    out.push(`*${table}`);
    for (const n of names) out.push(`:${n} - [0:0]`);
    for (const n of names) for (const r of chains.get(n)!.rules) out.push(`-A ${n}${spec(r)}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/**
 * The restore input of a partial sync from `prev` to `next` (applied with --noflush): only the
 * chains whose rules changed or that are new, and a flush plus `-X` for per-service chains that
 * are gone. kube-proxy's partial sync writes every top-level chain again; here an unchanged
 * KUBE-SERVICES is left out too, since --noflush leaves a chain that is not named as it is.
 */
export function renderPartialRestore(prev: Generated, next: Generated): string {
  const spec = specRenderer(next.ruleset.family);
  const out: string[] = [];
  for (const table of RESTORE_TABLES) {
    const before = chainsOf(prev, table);
    const after = chainsOf(next, table);
    const same = (a: Chain, b: Chain) => a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i] || spec(r) === spec(b.rules[i]));
    const names = (next.order.get(table) ?? []).filter((n) => {
      if (n === 'KUBE-PROXY-CANARY') return false;
      const old = before.get(n);
      return !old || !same(old, after.get(n)!);
    });
    const gone = (prev.order.get(table) ?? []).filter((n) => SERVICE_CHAIN.test(n) && !after.has(n));
    out.push(`*${table}`);
    for (const n of [...names, ...gone]) out.push(`:${n} - [0:0]`);
    for (const n of names) for (const r of after.get(n)!.rules) out.push(`-A ${n}${spec(r)}`);
    for (const n of gone) out.push(`-X ${n}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}
