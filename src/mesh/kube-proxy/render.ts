/**
 * The text forms of a generated node, cut from the same rule lines: the node's iptables-save
 * output, kube-proxy's iptables-restore input (applied with --noflush: filter then nat, each with
 * the chain lines of the chains it owns and their rules; the jumps from built-in chains are not
 * part of it, kube-proxy installs them with `iptables -I`), and the input of a partial sync.
 */
import { BUILTIN_CHAINS, type TableName } from '../../model/ruleset';
import type { Generated } from './generate';
import { LineBuffer, TableText } from './lines';

const RESTORE_TABLES: TableName[] = ['filter', 'nat'];
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;
const CANARY = 'KUBE-PROXY-CANARY';
const EMPTY = new TableText();

/** The user-defined chains of a table, in declaration order. */
function userChains(gen: Generated, table: TableName): string[] {
  const builtin: readonly string[] = BUILTIN_CHAINS[table];
  const out: string[] = [];
  for (const name of gen.tables.get(table)?.names ?? []) if (!builtin.includes(name)) out.push(name);
  return out;
}

/** The node's rules as iptables-save prints them after loading them (no `#` header or footer). */
export function renderSave(gen: Generated): string {
  const out = new LineBuffer(capacity(gen));
  for (const [table, t] of gen.tables) {
    const builtin = BUILTIN_CHAINS[table];
    // libiptc and iptables-nft list user chains in byte order of their names; the native sort of
    // ASCII strings is that order, and quicker than a comparator (or a radix sort: tried) over
    // 120,000 chains.
    const user = userChains(gen, table).sort();
    out.write(`*${table}\n`);
    for (const c of builtin) out.write(`:${c} ACCEPT [0:0]\n`);
    out.write(chainLines(user));
    for (const c of builtin) t.copyChain(c, out);
    for (const c of user) t.copyChain(c, out);
    out.write('COMMIT\n');
  }
  return out.text();
}

/** Room for every rule and a chain line per chain, so that the output is not copied as it grows. */
function capacity(gen: Generated): number {
  let n = 4096;
  for (const t of gen.tables.values()) n += t.lines.length + 40 * t.names.length;
  return n;
}

/** `:NAME - [0:0]` lines of user chains. */
const chainLines = (names: string[]): string => (names.length ? `:${names.join(' - [0:0]\n:')} - [0:0]\n` : '');

/** The full restore input of one sync. */
export function renderRestore(gen: Generated): string {
  const out = new LineBuffer(capacity(gen));
  for (const table of RESTORE_TABLES) {
    const t = gen.tables.get(table) ?? EMPTY;
    const names = userChains(gen, table).filter((n) => n !== CANARY);
    out.write(`*${table}\n`);
    out.write(chainLines(names));
    for (const n of names) t.copyChain(n, out);
    out.write('COMMIT\n');
  }
  return out.text();
}

/**
 * The restore input of a partial sync from `prev` to `next` (applied with --noflush): only the
 * chains whose rules changed or that are new, and a flush plus `-X` for per-service chains that
 * are gone; a table with nothing to change is left out. kube-proxy's own partial sync writes
 * every top-level chain again; here an unchanged KUBE-SERVICES is left out too, since --noflush
 * leaves a chain that is not named as it is, and a table that is not named is not even read
 * (iptables-legacy-restore fetches every table it is given, and replaces it if anything changed).
 */
export function renderPartialRestore(prev: Generated, next: Generated): string {
  const out = new LineBuffer();
  for (const table of RESTORE_TABLES) {
    const before = prev.tables.get(table) ?? EMPTY;
    const after = next.tables.get(table) ?? EMPTY;
    const names = userChains(next, table).filter((n) => n !== CANARY && !after.sameChain(n, before));
    const gone = userChains(prev, table).filter((n) => SERVICE_CHAIN.test(n) && !after.has(n));
    if (names.length === 0 && gone.length === 0) continue;
    out.write(`*${table}\n`);
    out.write(chainLines([...names, ...gone]));
    for (const n of names) after.copyChain(n, out);
    for (const n of gone) out.write(`-X ${n}\n`);
    out.write('COMMIT\n');
  }
  return out.text();
}
