/**
 * Applying a set of owned chains to a live namespace as one `iptables-restore --noflush`
 * transaction per family: the table is read, the restore text that refills our chains and keeps
 * exactly one jump into each is computed, and the kernel commits all of it or none of it
 * (legacy commits a table at COMMIT; nft sends one batch). No other rule is named in the text,
 * so no other rule can change.
 *
 * Kernel facts this relies on (iptables 1.8.9, both backends, checked in a namespace):
 * with --noflush, `:CHAIN - [0:0]` creates a missing chain and flushes an existing one;
 * `-D CHAIN rule-spec` deletes the first identical rule; `-X CHAIN` works inside a restore.
 * iptables-legacy-restore blocks on /run/xtables.lock even without -w (1.8.9 flocks without
 * LOCK_NB); `-w N` gives up after N seconds with exit 4; the nft backend takes no lock.
 */
import type { Family } from '../model/addr';
import type { Chain, Rule, Table, TableName } from '../model/ruleset';
import { getChain, getTable, isBuiltin } from '../model/ruleset';
import { saveRuleSpec } from '../syntax/save';
import { runIn, runInSync, startIn, type Binaries } from './backend';
import type { Started } from './exec';

/** A rule a tool owns in a built-in chain: a jump into one of its chains, or any other rule. */
export interface BuiltinRule {
  from: string;
  rule: Rule;
  /** Where it goes when missing: appended (default), or at the top (`-I CHAIN 1`), as Istio inserts some. */
  at?: 'top';
}

/** Chains a tool owns in one table, and its rules in built-in chains (jumps into them and others). */
export interface OwnedSet {
  table: TableName;
  chains: Chain[];
  jumps: BuiltinRule[];
}

/** Where and how to apply: namespace, family, binaries and the xtables lock wait. */
export interface ApplyTarget {
  /** Namespace name or path; the current namespace when absent. */
  netns?: string;
  family: Family;
  bins: Binaries;
  /** `-w`: true waits for the xtables lock as long as it takes, a number waits that many seconds. */
  wait?: boolean | number;
}

/** The restore text of one change (null when nothing needs to change) and what it does, in words. */
export interface Plan {
  text: string | null;
  actions: string[];
}

/** One difference between the live rules and the wanted ones. */
export interface Drift {
  kind: 'missing-chain' | 'missing' | 'extra' | 'reordered' | 'missing-jump' | 'extra-jump';
  chain: string;
  /** The rule as `-A CHAIN …` (absent for a whole missing chain). */
  rule?: string;
}

/** A failure of the kernel side, with the binary's own message. */
export class ApplyError extends Error {}

const spec = (r: Rule, family: Family): string => saveRuleSpec(r, { family, numeric: true });
const intoOwned = (r: Rule, names: Set<string>): boolean =>
  !!r.target && (r.target.kind === 'jump' || r.target.kind === 'goto') && names.has(r.target.chain);

function chainRulesEqual(live: Chain | undefined, want: Chain, family: Family): boolean {
  if (!live || live.rules.length !== want.rules.length) return false;
  return live.rules.every((r, i) => spec(r, family) === spec(want.rules[i], family));
}

/**
 * Which live rules of a built-in chain are ours: jumps into our chains, and rules spelled exactly
 * like one we want (a non-jump rule has nothing else to be known by).
 */
function ownedIn(live: Table | undefined, from: string, wants: BuiltinRule[], owned: Set<string>, family: Family): Rule[] {
  const wanted = new Set(wants.map((w) => spec(w.rule, family)));
  return (live && getChain(live, from)?.rules.filter((r) => intoOwned(r, owned) || wanted.has(spec(r, family)))) ?? [];
}

const byChain = (jumps: BuiltinRule[]): Map<string, BuiltinRule[]> => {
  const m = new Map<string, BuiltinRule[]>();
  for (const j of jumps) m.set(j.from, [...(m.get(j.from) ?? []), j]);
  return m;
};

/** The restore text that brings `live` (the table as read, or undefined if absent) to `owned`. */
export function planApply(live: Table | undefined, owned: OwnedSet, family: Family): Plan {
  const chainLines: string[] = [];
  const deletes: string[] = [];
  const appends: string[] = [];
  const inserts: string[] = [];
  const actions: string[] = [];
  const names = new Set(owned.chains.map((c) => c.name));
  for (const c of owned.chains) {
    const lc = live && getChain(live, c.name);
    if (chainRulesEqual(lc, c, family)) continue;
    chainLines.push(`:${c.name} - [0:0]`);
    actions.push(lc ? `flush and refill chain ${c.name} (${c.rules.length} rules)` : `create chain ${c.name} (${c.rules.length} rules)`);
    for (const r of c.rules) appends.push(`-A ${c.name}${spec(r, family)}`);
  }
  for (const [from, wants] of byChain(owned.jumps)) {
    const liveRules = ownedIn(live, from, wants, names, family);
    const pool = liveRules.map((r) => spec(r, family));
    const describe = (r: Rule) => (r.target && 'chain' in r.target && names.has(r.target.chain) ? `jump ${from} -> ${r.target.chain}` : `rule ${from}${spec(r, family)}`);
    const wantedSpecs = new Set(wants.map((w) => spec(w.rule, family)));
    const missing: BuiltinRule[] = [];
    for (const w of wants) {
      const k = pool.indexOf(spec(w.rule, family));
      if (k >= 0) pool.splice(k, 1);
      else missing.push(w);
    }
    // what is left in the pool is ours but not wanted: a duplicate, or stale from other settings
    for (const r of pool) {
      deletes.push(`-D ${from}${r}`);
      actions.push(`delete ${wantedSpecs.has(r) ? 'duplicate' : 'stale'} ${describe(liveRules[liveRules.findIndex((x) => spec(x, family) === r)])}`);
    }
    for (const w of missing.filter((m) => m.at !== 'top')) {
      appends.push(`-A ${from}${spec(w.rule, family)}`);
      actions.push(`append ${describe(w.rule)}`);
    }
    // inserted at 1 in reverse, so that they end up in the order wanted
    for (const w of missing.filter((m) => m.at === 'top').reverse()) {
      inserts.push(`-I ${from} 1${spec(w.rule, family)}`);
      actions.push(`insert ${describe(w.rule)} at the top`);
    }
  }
  if (!actions.length) return { text: null, actions: [] };
  return { text: [`*${owned.table}`, ...chainLines, ...deletes, ...appends, ...inserts, 'COMMIT', ''].join('\n'), actions };
}

/**
 * The restore text that installs `owned` into a table that holds none of its chains, declaring
 * each with `-N`; null when the set has rules in built-in chains other than jumps into its chains
 * (those may be present without the chains). Where any of the chains exists, the kernel refuses
 * the whole transaction and nothing changes (both backends: "Chain already exists"), so the text
 * can be tried without reading the table first.
 */
export function planFresh(owned: OwnedSet, family: Family): Plan | null {
  const names = new Set(owned.chains.map((c) => c.name));
  if (!names.size || !owned.jumps.every((j) => intoOwned(j.rule, names))) return null;
  const p = planApply(undefined, owned, family);
  if (!p.text) return null;
  return { text: p.text.replace(/^:(\S+) - \[0:0\]$/gm, '-N $1'), actions: p.actions };
}

/**
 * The restore text that removes our chains, every jump into them from built-in chains, and our
 * other built-in-chain rules (`rules`, known by their exact spelling).
 */
export function planRemove(live: Table | undefined, table: TableName, chains: string[], family: Family, rules: BuiltinRule[] = []): Plan {
  const names = new Set(chains);
  const actions: string[] = [];
  const lines: string[] = [];
  const present = chains.filter((c) => live && getChain(live, c));
  for (const c of present) lines.push(`:${c} - [0:0]`);
  const wanted = byChain(rules);
  for (const c of live?.chains ?? [])
    if (isBuiltin(table, c.name))
      for (const r of ownedIn(live, c.name, wanted.get(c.name) ?? [], names, family)) {
        lines.push(`-D ${c.name}${spec(r, family)}`);
        actions.push(intoOwned(r, names) ? `delete jump ${c.name} -> ${(r.target as { chain: string }).chain}` : `delete ${c.name}${spec(r, family)}`);
      }
  for (const c of present) {
    lines.push(`-X ${c}`);
    actions.push(`delete chain ${c}`);
  }
  if (!actions.length) return { text: null, actions: [] };
  return { text: [`*${table}`, ...lines, 'COMMIT', ''].join('\n'), actions };
}

/** Missing, extra and reordered rules of our chains and jumps, live against wanted. */
export function diffOwnedChains(live: Table | undefined, owned: OwnedSet, family: Family): Drift[] {
  const out: Drift[] = [];
  for (const c of owned.chains) {
    const lc = live && getChain(live, c.name);
    if (!lc) {
      out.push({ kind: 'missing-chain', chain: c.name });
      continue;
    }
    const have = lc.rules.map((r) => `-A ${c.name}${spec(r, family)}`);
    const want = c.rules.map((r) => `-A ${c.name}${spec(r, family)}`);
    const pool = [...have];
    const missing: string[] = [];
    for (const w of want) {
      const i = pool.indexOf(w);
      if (i < 0) missing.push(w);
      else pool.splice(i, 1);
    }
    for (const m of missing) out.push({ kind: 'missing', chain: c.name, rule: m });
    for (const e of pool) out.push({ kind: 'extra', chain: c.name, rule: e });
    if (!missing.length && !pool.length)
      have.forEach((h, i) => {
        if (h !== want[i]) out.push({ kind: 'reordered', chain: c.name, rule: `${h} (at ${i + 1}, wanted at ${want.indexOf(h) + 1})` });
      });
  }
  const names = new Set(owned.chains.map((c) => c.name));
  for (const [from, wants] of byChain(owned.jumps)) {
    const pool = ownedIn(live, from, wants, names, family).map((r) => `-A ${from}${spec(r, family)}`);
    for (const w of wants) {
      const want = `-A ${from}${spec(w.rule, family)}`;
      const k = pool.indexOf(want);
      if (k >= 0) pool.splice(k, 1);
      else out.push({ kind: 'missing-jump', chain: from, rule: want });
    }
    for (const t of pool) out.push({ kind: 'extra-jump', chain: from, rule: t });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The kernel side.

// The parser is needed only where a live table is read: a pod's first init or ADD never reads one
const parser = async () => (await import('../syntax/restore')).parseRestore;

/** The `*table` … `COMMIT` block of one table in a save dump, or '' when the dump has none. */
export function tableBlock(dump: string, table: TableName): string {
  const lines = dump.split('\n').filter((l) => !l.startsWith('#'));
  const start = lines.indexOf(`*${table}`);
  if (start < 0) return '';
  const end = lines.indexOf('COMMIT', start);
  return lines.slice(start, end < 0 ? undefined : end + 1).join('\n') + '\n';
}

/** The table as the kernel prints it ('' when the kernel has no such table yet). */
export async function readTableText(t: ApplyTarget, table: TableName): Promise<string> {
  // no `-t`: iptables-legacy-save -t nat instantiates the nat table in a namespace that has none,
  // so even --simulate, verify and clean would leave an empty *nat behind; a plain save lists only
  // the tables that exist
  const r = await runIn(t.netns, t.bins.save, [], { timeoutMs: 60_000 }).catch((e: NodeJS.ErrnoException) => {
    throw new ApplyError(`cannot run ${t.bins.save}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
  });
  if (r.code !== 0) throw new ApplyError(`${t.bins.save} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return tableBlock(r.stdout, table);
}

/** The table as the kernel prints it, and parsed (undefined when the kernel has no such table yet). */
export async function readTable(t: ApplyTarget, table: TableName): Promise<{ text: string; table: Table | undefined }> {
  const text = await readTableText(t, table);
  if (!text) return { text, table: undefined };
  const parsed = (await parser())(text, { family: t.family });
  const bad = parsed.issues.find((i) => i.severity === 'error');
  if (bad) throw new ApplyError(`cannot read the live ${table} table (line ${bad.line}): ${bad.message}`);
  return { text, table: getTable(parsed.ruleset, table) };
}

function waitArgs(wait: ApplyTarget['wait']): string[] {
  if (wait === undefined || wait === false) return [];
  return wait === true ? ['-w'] : ['-w', String(wait)];
}

/** A restore started before its input is known. */
export type StartedRestore = Started;

/** What applyFreshFamilies' script prints once a family's restore has committed, before its save. */
const RESTORED = 'restored\n';

/**
 * An iptables-restore --noflush started before its input is known (it waits on stdin, holding no
 * lock), so that its start-up overlaps with working out the rules (a CNI ADD's API requests).
 * Finished with no text, it commits nothing.
 */
export function startRestore(t: ApplyTarget): StartedRestore {
  return startIn(t.netns, t.bins.restore, ['--noflush', ...waitArgs(t.wait)], { timeoutMs: 10 * 60_000, discardStdout: true });
}

/**
 * Let go of restores from startRestore once the work that would feed them is over: one still
 * waiting is given nothing and commits nothing; one already given its text is only awaited.
 */
export async function releaseRestores(started: readonly (StartedRestore | undefined)[]): Promise<void> {
  await Promise.all(started.map((s) => s?.finish('').catch(() => undefined)));
}

/** Give a started restore its text (or start one): its exit code and its messages. */
async function runRestore(t: ApplyTarget, text: string, s: StartedRestore = startRestore(t)): Promise<{ code: number; stderr: string }> {
  return s.finish(text).catch((e: NodeJS.ErrnoException) => {
    throw new ApplyError(`cannot run ${t.bins.restore}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
  });
}

/** Load restore text with --noflush in one transaction. */
export async function restoreNoflush(t: ApplyTarget, text: string): Promise<void> {
  const r = await runRestore(t, text);
  if (r.code !== 0) {
    const msg = r.stderr.trim();
    const hint = /xtables lock/i.test(msg) && !t.wait ? ' (another process holds the xtables lock; -w waits for it)' : '';
    throw new ApplyError(`${t.bins.restore} --noflush failed (exit ${r.code}), nothing was changed: ${msg}${hint}`);
  }
}

/** What an apply or remove did. */
export interface ApplyResult {
  changed: boolean;
  actions: string[];
  /** The restore text sent (null when nothing had to change). */
  text: string | null;
  /** The whole save dump right after the change, where applyFreshFamilies made it. */
  after?: string;
}

/**
 * Refill our chains and keep exactly one jump into each, in one transaction; nothing else changes.
 * `started` is a restore from startRestore, used for the first transaction tried.
 */
export async function applyOwnedChains(t: ApplyTarget, owned: OwnedSet, started?: StartedRestore, freshTried = false): Promise<ApplyResult> {
  // A pod's namespace is new when its init container or CNI ADD runs: try the transaction that
  // installs everything without reading the table first. If any of our chains is there, the
  // kernel refuses it whole; then read, diff and apply as below. One process instead of two.
  // (`freshTried`: applyFreshFamilies tried it already.)
  const fresh = freshTried ? null : planFresh(owned, t.family);
  if (fresh?.text) {
    const r = await runRestore(t, fresh.text, started);
    if (r.code === 0) return { changed: true, actions: fresh.actions, text: fresh.text };
  } else if (started) await runRestore(t, '', started);
  const { table } = await readTable(t, owned.table);
  const plan = planApply(table, owned, t.family);
  if (plan.text) await restoreNoflush(t, plan.text);
  return { changed: !!plan.text, actions: plan.actions, text: plan.text };
}

/** Ends each family's rules inside applyFreshFamilies' script (rules that hold it as a line are not tried there). */
const RULES_END = 'PODTABLES_RULES_END';

/**
 * applyOwnedChains' first transaction (planFresh) for several families at once, as a pod's init
 * container needs it: one sh, run to its end without streams, runs each family's restore and,
 * once it has committed, its save, the families side by side. (Under legacy their restores still
 * commit one after the other: they share the xtables lock.) One process to start and wait for
 * instead of one per family with three pipes each: what a pod waits on. Per family: whether it
 * was tried, and the result when its transaction committed (with the save after it when that
 * worked). Where it was tried and did not commit (a chain of ours is there already, or it
 * could not run), the caller reads and diffs, with applyOwnedChains(…, freshTried). Targets that
 * differ in namespace or wait are not tried.
 */
export function applyFreshFamilies(targets: readonly ApplyTarget[], owned: readonly OwnedSet[]): { tried: boolean; result?: ApplyResult }[] {
  const results: { tried: boolean; result?: ApplyResult }[] = targets.map(() => ({ tried: false }));
  const lines: string[] = [];
  const bins: string[] = [];
  const tried: { at: number; plan: Plan }[] = [];
  const waits = new Set(targets.map((t) => JSON.stringify(waitArgs(t.wait))));
  if (!targets.length || waits.size > 1 || new Set(targets.map((t) => t.netns)).size > 1) return results;
  const args = ['--noflush', ...waitArgs(targets[0].wait)].join(' ');
  targets.forEach((t, i) => {
    const plan = planFresh(owned[i], t.family);
    if (!plan?.text || plan.text.split('\n').includes(RULES_END)) return;
    // the binaries are positional parameters (a path is never read as shell words); family k
    // writes its output to descriptors 3+2k and 4+2k; `|| exit` keeps the save and the marker
    // from a restore that failed
    const k = tried.length;
    const [restore, save] = [bins.push(t.bins.restore), bins.push(t.bins.save)];
    lines.push(`{ "\${${restore}}" ${args} >/dev/null <<'${RULES_END}' || exit`, plan.text.replace(/\n$/, ''), RULES_END, `echo restored; exec "\${${save}}"; } >&${3 + 2 * k} 2>&${4 + 2 * k} & p${k}=$!`);
    tried.push({ at: i, plan });
  });
  if (!tried.length) return results;
  lines.push(tried.map((_, k) => `wait $p${k}; c${k}=$?`).join('; '), `echo ${tried.map((_, k) => `$c${k}`).join(' ')}`);
  let r: ReturnType<typeof runInSync>;
  try {
    r = runInSync(targets[0].netns, 'sh', ['-c', lines.join('\n'), 'sh', ...bins], { extra: 2 * tried.length, timeoutMs: 10 * 60_000 });
  } catch {
    // no sh (or nsenter) to run: each family goes the long way, which says what is missing
    return results;
  }
  const codes = r.stdout.trim().split(' ').map(Number);
  tried.forEach(({ at, plan }, k) => {
    results[at].tried = true;
    const out = r.extra[2 * k] ?? '';
    if (!out.startsWith(RESTORED)) return;
    // committed; a save that failed leaves `after` unknown, and the caller reads the table itself
    results[at].result = { changed: true, actions: plan.actions, text: plan.text, after: codes[k] === 0 ? out.slice(RESTORED.length) : undefined };
  });
  return results;
}

/** Remove our chains and the jumps into them, in one transaction. */
export async function removeOwnedChains(t: ApplyTarget, table: TableName, chains: string[]): Promise<ApplyResult> {
  const live = await readTable(t, table);
  const plan = planRemove(live.table, table, chains, t.family);
  if (plan.text) await restoreNoflush(t, plan.text);
  return { changed: !!plan.text, actions: plan.actions, text: plan.text };
}

/** Compare the live table with what we would install. */
export async function verifyOwnedChains(t: ApplyTarget, owned: OwnedSet): Promise<Drift[]> {
  const { table } = await readTable(t, owned.table);
  return diffOwnedChains(table, owned, t.family);
}

/** Every table of the namespace, read with one save and parsed (for owners of several tables). */
async function readTables(t: ApplyTarget): Promise<Map<TableName, Table>> {
  const r = await runIn(t.netns, t.bins.save, [], { timeoutMs: 60_000 }).catch((e: NodeJS.ErrnoException) => {
    throw new ApplyError(`cannot run ${t.bins.save}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
  });
  if (r.code !== 0) throw new ApplyError(`${t.bins.save} failed (exit ${r.code}): ${r.stderr.trim()}`);
  const parsed = (await parser())(r.stdout, { family: t.family });
  const bad = parsed.issues.find((i) => i.severity === 'error');
  if (bad) throw new ApplyError(`cannot read the live tables (line ${bad.line}): ${bad.message}`);
  return new Map(parsed.ruleset.tables.map((x) => [x.name, x]));
}

/** Apply owned sets in several tables with one read and one restore (one transaction per table). */
export async function applyOwnedTables(t: ApplyTarget, sets: OwnedSet[]): Promise<ApplyResult> {
  const live = await readTables(t);
  const plans = sets.map((s) => planApply(live.get(s.table), s, t.family));
  const text = plans.map((p) => p.text ?? '').join('') || null;
  if (text) await restoreNoflush(t, text);
  return { changed: !!text, actions: plans.flatMap((p) => p.actions), text };
}

/** Remove owned sets in several tables, our built-in-chain rules included, with one restore. */
export async function removeOwnedTables(t: ApplyTarget, sets: OwnedSet[]): Promise<ApplyResult> {
  const live = await readTables(t);
  const plans = sets.map((s) => planRemove(live.get(s.table), s.table, s.chains.map((c) => c.name), t.family, s.jumps));
  const text = plans.map((p) => p.text ?? '').join('') || null;
  if (text) await restoreNoflush(t, text);
  return { changed: !!text, actions: plans.flatMap((p) => p.actions), text };
}

/** Drift of owned sets in several tables. */
export async function verifyOwnedTables(t: ApplyTarget, sets: OwnedSet[]): Promise<Drift[]> {
  const live = await readTables(t);
  return sets.flatMap((s) => diffOwnedChains(live.get(s.table), s, t.family));
}
