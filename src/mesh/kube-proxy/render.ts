/**
 * The text forms of a generated node, cut from the same rule lines: the node's iptables-save
 * output, kube-proxy's iptables-restore input (applied with --noflush: filter then nat, each with
 * the chain lines of the chains it owns and their rules; the jumps from built-in chains are not
 * part of it, kube-proxy installs them with `iptables -I`), and the input of a partial sync.
 */
import { BUILTIN_CHAINS, type TableName } from '../../model/ruleset';
import type { Generated } from './generate';
import { LineBuffer, type TableText } from './lines';
import type { ChainId, ChainNames } from './names';

const RESTORE_TABLES: TableName[] = ['filter', 'nat'];
const SERVICE_CHAIN = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;
const CANARY = 'KUBE-PROXY-CANARY';

/** The user-defined chains of a table, in declaration order, leaving out built-in chains and `skip`. */
function userChains(t: TableText | undefined, table: TableName, skip?: string): Int32Array {
  if (!t) return new Int32Array(0);
  const names = t.chains;
  const leave = new Set<ChainId>();
  for (const c of BUILTIN_CHAINS[table]) {
    const id = names.find(c);
    if (id !== undefined) leave.add(id);
  }
  if (skip !== undefined) {
    const id = names.find(skip);
    if (id !== undefined) leave.add(id);
  }
  const ids = t.ids();
  if (leave.size === 0) return ids;
  const out = new Int32Array(ids.length);
  let n = 0;
  // Indexed loops over the 120,000 chains: a for-of loop, before it is compiled, makes an
  // iterator result per step (22 MB of them across the generator and this file at 30,000 Services).
  for (let i = 0; i < ids.length; i++) if (!leave.has(ids[i])) out[n++] = ids[i];
  return out.subarray(0, n);
}

/** The node's rules as iptables-save prints them after loading them (no `#` header or footer). */
export function renderSave(gen: Generated): string {
  const out = new LineBuffer(capacity(gen));
  for (const [table, t] of gen.tables) {
    const builtin = BUILTIN_CHAINS[table];
    // libiptc and iptables-nft list user chains in byte order of their names.
    const user = gen.names.sort(userChains(t, table));
    out.write(`*${table}\n`);
    for (const c of builtin) out.write(`:${c} ACCEPT [0:0]\n`);
    chainLines(gen.names, user, out);
    for (const c of builtin) {
      const id = gen.names.find(c);
      if (id !== undefined) t.copyChain(id, out);
    }
    for (let i = 0; i < user.length; i++) t.copyChain(user[i], out);
    out.write('COMMIT\n');
  }
  return out.text();
}

/** Room for every rule and a chain line per chain, so that the output is not copied as it grows. */
function capacity(gen: Generated): number {
  let n = 4096;
  for (const t of gen.tables.values()) n += t.lines.length + 40 * t.ids().length;
  return n;
}

/** `:NAME - [0:0]` lines of user chains. */
function chainLines(names: ChainNames, ids: Int32Array, out: LineBuffer): void {
  names.writeChainLines(ids, out);
}

/** The full restore input of one sync. */
export function renderRestore(gen: Generated): string {
  const out = new LineBuffer(capacity(gen));
  for (const table of RESTORE_TABLES) {
    const t = gen.tables.get(table);
    const ids = userChains(t, table, CANARY);
    out.write(`*${table}\n`);
    chainLines(gen.names, ids, out);
    if (t) for (let i = 0; i < ids.length; i++) t.copyChain(ids[i], out);
    out.write('COMMIT\n');
  }
  return out.text();
}

/** Each declared chain's id by its name (partial syncs compare two generations' chains by name). */
function idsByName(t: TableText | undefined): Map<string, ChainId> {
  const m = new Map<string, ChainId>();
  if (t) for (const id of t.ids()) m.set(t.chains.text(id), id);
  return m;
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
    const before = prev.tables.get(table);
    const after = next.tables.get(table);
    const old = idsByName(before);
    const now = idsByName(after);
    const names: string[] = [];
    const changed: ChainId[] = [];
    for (const id of userChains(after, table, CANARY)) {
      const name = next.names.text(id);
      if (before && after!.sameChain(id, before, old.get(name))) continue;
      names.push(name);
      changed.push(id);
    }
    const gone: string[] = [];
    for (const id of userChains(before, table)) {
      const name = prev.names.text(id);
      if (SERVICE_CHAIN.test(name) && !now.has(name)) gone.push(name);
    }
    if (names.length === 0 && gone.length === 0) continue;
    out.write(`*${table}\n`);
    for (const n of [...names, ...gone]) out.write(`:${n} - [0:0]\n`);
    for (const id of changed) after!.copyChain(id, out);
    for (const n of gone) out.write(`-X ${n}\n`);
    out.write('COMMIT\n');
  }
  return out.text();
}
