/**
 * Applying commands to a ruleset as iptables-restore and iptables do: chains are created, flushed,
 * deleted and filled; errors carry the line they came from.
 */
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { BUILTIN_CHAINS, emptyTable, isBuiltin, TABLE_NAMES, type Chain, type Hook, type Rule, type Ruleset, type Table, type TableName } from '../model/ruleset';
import type { Command } from './command';
import { allExtensions, getMatch, getTarget } from '../extensions/index';
import type { Extension } from '../extensions/types';
import { saveRuleSpec } from './save';

/** A table under construction with its chains by name. */
interface TableState {
  table: Table;
  chains: Map<string, Chain>;
}

/** A ruleset under construction, with chain indexes for fast lookup. */
export class RulesetBuilder {
  private tables = new Map<TableName, TableState>();
  /**
   * The chains found last by name, with their tables, newest first: a dump's rules come chain by
   * chain, a few chains (a MARK chain, a DROP chain) are jumped to from everywhere, and the chain
   * a rule jumps to is often the next line's. Comparing a name with these costs less than the
   * map, which hashes a name it has not seen. Forgotten whenever chains change.
   */
  private recentTables: (TableState | undefined)[] = [undefined, undefined, undefined, undefined];
  private recentNames: string[] = ['', '', '', ''];
  private recentChains: (Chain | undefined)[] = [undefined, undefined, undefined, undefined];

  constructor(public family: Family) {}

  /** The table, created with its built-in chains on first use (as the kernel does). */
  table(name: TableName): TableState {
    let t = this.tables.get(name);
    if (!t) {
      const table = emptyTable(name);
      t = { table, chains: new Map(table.chains.map((c) => [c.name, c])) };
      this.tables.set(name, t);
    }
    return t;
  }

  has(name: TableName): boolean {
    return this.tables.has(name);
  }

  /** Empty the table: no rules, no user chains, policies ACCEPT (iptables-restore without --noflush). */
  reset(name: TableName): void {
    this.forget();
    const table = emptyTable(name);
    // Map.set keeps the table's first position: tables print in the order they were first given
    this.tables.set(name, { table, chains: new Map(table.chains.map((c) => [c.name, c])) });
  }

  /** Declare a chain from a `:NAME POLICY [p:b]` line. */
  declare(tname: TableName, name: string, policy: string, counters: Chain['counters'], line: number, issues: Issue[]): void {
    const t = this.table(tname);
    if (isBuiltin(tname, name)) {
      const c = t.chains.get(name)!;
      if (policy !== 'ACCEPT' && policy !== 'DROP') {
        issues.push(err(line, 1, `Can't set policy \`${policy}' on \`${name}' line ${line}: Bad built-in chain name`, 'bad-policy'));
        return;
      }
      c.policy = policy;
      c.counters = counters ?? { packets: 0, bytes: 0 };
      return;
    }
    if (policy !== '-') {
      issues.push(err(line, 1, `Can't set policy \`${policy}' on \`${name}': Bad built-in chain name`, 'bad-policy'));
      return;
    }
    const existing = t.chains.get(name);
    if (existing) existing.rules = [];
    else this.addChain(tname, name);
  }

  private addChain(tname: TableName, name: string): Chain {
    const t = this.table(tname);
    const c: Chain = { name, rules: [] };
    t.table.chains.push(c);
    t.chains.set(name, c);
    return c;
  }

  /** Append a rule to a chain of the table; false (and nothing changed) when there is no such chain. */
  append(tname: TableName, chain: string, r: Rule): boolean {
    const t = this.table(tname);
    const c = this.find(t, chain);
    if (!c) return false;
    // a jump names its chain with the chain's own string: the same text, held once, and found by
    // the table checks without comparing characters
    const tg = r.target;
    if (tg && (tg.kind === 'jump' || tg.kind === 'goto')) {
      const to = this.find(t, tg.chain);
      if (to) tg.chain = to.name;
    }
    // a chain's first rules are held in lists exactly as long: a list grown by push from empty
    // has room for 17, and a kube-proxy table has 40,000 chains of two or three rules
    const rs = c.rules;
    if (rs.length === 0) c.rules = [r];
    else if (rs.length === 1) c.rules = [rs[0], r];
    else if (rs.length === 2) c.rules = [rs[0], rs[1], r];
    else rs.push(r);
    return true;
  }

  /** The chain of table `t` called `name`, looked for among the last few found first. */
  private find(t: TableState, name: string): Chain | undefined {
    const tables = this.recentTables;
    const names = this.recentNames;
    const chains = this.recentChains;
    for (let k = 0; k < 4; k++)
      if (tables[k] === t && names[k] === name) {
        const c = chains[k];
        // the one found moves to the front, the others down one place
        for (let j = k; j > 0; j--) {
          tables[j] = tables[j - 1];
          names[j] = names[j - 1];
          chains[j] = chains[j - 1];
        }
        tables[0] = t;
        names[0] = c!.name;
        chains[0] = c;
        return c;
      }
    const c = t.chains.get(name);
    if (c) {
      for (let j = 3; j > 0; j--) {
        tables[j] = tables[j - 1];
        names[j] = names[j - 1];
        chains[j] = chains[j - 1];
      }
      tables[0] = t;
      names[0] = c.name;
      chains[0] = c;
    }
    return c;
  }

  /** Forget the chains found last (chains are about to be added, renamed or deleted). */
  private forget(): void {
    for (let k = 0; k < 4; k++) {
      this.recentTables[k] = this.recentChains[k] = undefined;
      this.recentNames[k] = '';
    }
  }

  /** Apply one parsed command; problems become issues at `line`. */
  apply(tname: TableName, cmd: Command, line: number, column: number, issues: Issue[]): void {
    const t = this.table(tname);
    if (cmd.op === 'append') {
      // the hot path of a dump: no closure, no spread
      for (let k = 0; k < cmd.rules.length; k++)
        if (!this.append(tname, cmd.chain, cmd.rules[k])) {
          issues.push(err(line, column, `chain \`${cmd.chain}' does not exist in table \`${tname}'`, 'no-chain'));
          return;
        }
      return;
    }
    this.forget();
    const chain = (name: string | undefined): Chain | undefined => {
      const c = name === undefined ? undefined : t.chains.get(name);
      if (!c) issues.push(err(line, column, `chain \`${name}' does not exist in table \`${tname}'`, 'no-chain'));
      return c;
    };
    switch (cmd.op) {
      case 'insert': {
        const c = chain(cmd.chain);
        if (!c) return;
        if (cmd.position > c.rules.length + 1) {
          issues.push(err(line, column, `Index of insertion too big`, 'bad-index'));
          return;
        }
        c.rules.splice(cmd.position - 1, 0, ...cmd.rules);
        return;
      }
      case 'replace': {
        const c = chain(cmd.chain);
        if (!c) return;
        if (cmd.position > c.rules.length) return void issues.push(err(line, column, 'Index of replacement too big', 'bad-index'));
        c.rules.splice(cmd.position - 1, 1, ...cmd.rules);
        return;
      }
      case 'delete': {
        const c = chain(cmd.chain);
        if (!c) return;
        if (cmd.position !== undefined) {
          if (cmd.position > c.rules.length) return void issues.push(err(line, column, 'Index of deletion too big', 'bad-index'));
          c.rules.splice(cmd.position - 1, 1);
          return;
        }
        for (const r of cmd.rules ?? []) {
          const key = specOf(r, this.family);
          const k = c.rules.findIndex((x) => specOf(x, this.family) === key);
          if (k < 0) issues.push(err(line, column, `Bad rule (does a matching rule exist in that chain?)`, 'no-rule'));
          else c.rules.splice(k, 1);
        }
        return;
      }
      case 'new-chain':
        if (t.chains.has(cmd.chain)) issues.push(err(line, column, `Chain already exists`, 'chain-exists'));
        else this.addChain(tname, cmd.chain);
        return;
      case 'delete-chain': {
        const names = cmd.chain ? [cmd.chain] : t.table.chains.filter((c) => !isBuiltin(tname, c.name)).map((c) => c.name);
        for (const n of names) {
          if (isBuiltin(tname, n)) return void issues.push(err(line, column, `Can't delete built-in chain \`${n}'`, 'builtin-chain'));
          if (!t.chains.has(n)) return void issues.push(err(line, column, `No chain/target/match by that name.`, 'no-chain'));
          const refs = t.table.chains.some((c) => c.rules.some((r) => (r.target?.kind === 'jump' || r.target?.kind === 'goto') && r.target.chain === n));
          if (refs && cmd.chain) return void issues.push(err(line, column, `Too many links: chain \`${n}' is referenced`, 'chain-in-use'));
        }
        t.table.chains = t.table.chains.filter((c) => !names.includes(c.name));
        for (const n of names) t.chains.delete(n);
        return;
      }
      case 'flush':
        for (const c of cmd.chain ? [chain(cmd.chain)] : t.table.chains) if (c) c.rules = [];
        return;
      case 'zero':
        for (const c of cmd.chain ? [chain(cmd.chain)] : t.table.chains)
          if (c) {
            if (c.counters) c.counters = { packets: 0, bytes: 0 };
            for (const r of c.rules) if (r.counters) r.counters = { packets: 0, bytes: 0 };
          }
        return;
      case 'policy': {
        if (!isBuiltin(tname, cmd.chain)) return void issues.push(err(line, column, `Bad built-in chain name`, 'bad-policy'));
        const c = t.chains.get(cmd.chain)!;
        c.policy = cmd.policy;
        if (cmd.counters) c.counters = cmd.counters;
        return;
      }
      case 'rename-chain': {
        const c = chain(cmd.chain);
        if (!c) return;
        if (t.chains.has(cmd.to)) return void issues.push(err(line, column, `File exists`, 'chain-exists'));
        t.chains.delete(c.name);
        for (const x of t.table.chains)
          for (const r of x.rules) if ((r.target?.kind === 'jump' || r.target?.kind === 'goto') && r.target.chain === c.name) r.target.chain = cmd.to;
        c.name = cmd.to;
        t.chains.set(c.name, c);
        return;
      }
      case 'list':
        return;
    }
  }

  /**
   * The finished ruleset with jump targets and loops checked, tables in one canonical order (raw,
   * mangle, nat, filter, security). iptables-save's own order is namespace history, not content:
   * legacy prints the most recently first-used table first, nft a fixed mangle, security, raw,
   * filter, nat (measured on 1.8.9), so no order is "the kernel's".
   */
  build(issues: Issue[]): Ruleset {
    const tables = TABLE_NAMES.filter((n) => this.tables.has(n)).map((n) => this.tables.get(n)!.table);
    for (const t of tables) checkTable(t, issues);
    return { family: this.family, tables };
  }
}

const specOf = (r: Rule, family: Family) => saveRuleSpec(r, { family, numeric: true });

function err(line: number, column: number, message: string, code: string): Issue {
  return { severity: 'error', code, message, line, column };
}

/**
 * Jumps to missing chains and jump loops are refused, as the kernel refuses them at commit. The
 * walks number the chains (by name; a repeated name means its last chain, as a lookup by name
 * finds it) so that a kube-proxy table of 40,000 chains costs arrays, not maps of names.
 */
export function checkTable(t: Table, issues: Issue[]): void {
  const chains = t.chains;
  const index = new Map<string, number>();
  for (let k = 0; k < chains.length; k++) index.set(chains[k].name, k);
  // names are nearly always distinct, and then a chain's number is its place
  const distinct = index.size === chains.length;
  const edges: number[][] = new Array(chains.length);
  // one walk over the rules gathers both the jumps and the hooks that hook-limited extensions
  // allow: a table of 100,000 rules is larger than the processor's caches, so each walk over it
  // costs. Per chain, only the hooks every such rule allows are kept (a bit each); a chain reached
  // from a hook outside them is looked at again, rule by rule, for the messages.
  const hooked = hookLimited();
  let allowed: Int32Array | undefined;
  for (let k = 0; k < chains.length; k++) {
    const c = chains[k];
    let out: number[] | undefined;
    const at = distinct ? k : index.get(c.name)!;
    const rules = c.rules;
    for (let j = 0; j < rules.length; j++) {
      const r = rules[j];
      const matches = r.matches;
      for (let q = 0; q < matches.length; q++) {
        const m = matches[q];
        if (m.kind === 'match' && hooked.matches.has(m.name)) allowed = narrow(allowed, chains.length, at, getMatch(m.name)!, m.info);
      }
      const tg = r.target;
      if (tg === undefined) continue;
      if (tg.kind === 'jump' || tg.kind === 'goto') {
        const to = index.get(tg.chain);
        if (to === undefined || isBuiltin(t.name, tg.chain)) {
          issues.push(err(r.line ?? 0, 1, `Couldn't load target \`${tg.chain}': No such file or directory (table ${t.name}, chain ${c.name})`, 'no-chain'));
        } else if (out) out.push(to);
        else out = [to];
      } else if (tg.kind === 'extension' && hooked.targets.has(tg.name)) allowed = narrow(allowed, chains.length, at, getTarget(tg.name)!, tg.info);
    }
    edges[k] = out ?? NO_EDGES;
  }
  // a repeated chain name means its last chain, as a lookup by name finds it
  if (!distinct)
    for (let k = 0; k < chains.length; k++) {
      const at = index.get(chains[k].name)!;
      if (at !== k) edges[k] = edges[at];
    }
  const g: Graph = { chains, index, edges };
  if (findLoop(t, g, issues)) return;
  if (allowed) checkHooks(t, g, allowed, issues);
}

/** Bits of the hooks, for sets of them held as numbers. */
const HOOK_BITS: Record<Hook, number> = { PREROUTING: 1, INPUT: 2, FORWARD: 4, OUTPUT: 8, POSTROUTING: 16 };
const ALL_HOOKS = 31;

function hookMask(hooks: readonly string[]): number {
  let m = 0;
  for (const h of hooks) m |= HOOK_BITS[h as Hook] ?? 0;
  return m;
}

/**
 * Narrow chain `k`'s allowed hooks to those of a hook-limited extension (`allowed` is made on the
 * first one, every chain allowing all hooks).
 */
function narrow(allowed: Int32Array | undefined, n: number, k: number, e: Extension, info: unknown): Int32Array | undefined {
  const hooks = e.hooksFor?.(info) ?? e.hooks;
  if (!hooks) return allowed;
  if (!allowed) allowed = new Int32Array(n).fill(ALL_HOOKS);
  allowed[k] &= hookMask(hooks);
  return allowed;
}

const NO_EDGES: number[] = [];

/** The jump graph of a table over chain numbers. */
interface Graph {
  chains: Chain[];
  index: Map<string, number>;
  /** The chains each chain jumps to, in rule order. */
  edges: number[][];
}

/**
 * Depth-first search from every chain with an explicit stack (a kube-proxy dump has 40,000
 * chains); a chain met again while still on the stack closes a loop. The path is only built then.
 */
function findLoop(t: Table, g: Graph, issues: Issue[]): boolean {
  const n = g.chains.length;
  // 0 unvisited, 1 on the stack, 2 done
  const state = new Uint8Array(n);
  const stack = new Int32Array(n);
  const next = new Int32Array(n);
  const roots: number[] = [];
  for (const b of BUILTIN_CHAINS[t.name]) {
    const k = g.index.get(b);
    if (k !== undefined) roots.push(k);
  }
  for (let k = 0; k < n; k++) roots.push(g.index.get(g.chains[k].name)!);
  for (const root of roots) {
    if (state[root]) continue;
    let depth = 0;
    stack[depth] = root;
    next[depth++] = 0;
    state[root] = 1;
    while (depth) {
      const top = stack[depth - 1];
      const out = g.edges[top];
      if (next[depth - 1] >= out.length) {
        state[top] = 2;
        depth--;
        continue;
      }
      const m = out[next[depth - 1]++];
      if (state[m] === 2) continue;
      if (state[m] === 1) {
        const path: string[] = [];
        for (let d = 0; d < depth; d++) path.push(g.chains[stack[d]].name);
        const name = g.chains[m].name;
        const cycle = [...path.slice(path.indexOf(name)), name];
        issues.push(err(g.chains[top].rules[0]?.line ?? 0, 1, `jump loop in table ${t.name}: ${cycle.join(' -> ')}`, 'loop'));
        return true;
      }
      state[m] = 1;
      stack[depth] = m;
      next[depth++] = 0;
    }
  }
  return false;
}

/**
 * Extensions limited to some hooks (owner, REDIRECT, …, or by their options: policy --dir in,
 * TCPMSS --clamp-mss-to-pmtu) must not be reachable from others, as checkentry refuses them.
 */
function checkHooks(t: Table, g: Graph, allowed: Int32Array, issues: Issue[]): void {
  // seen[k] holds the number of the walk that last reached chain k
  const seen = new Int32Array(g.chains.length);
  const stack: number[] = [];
  let walk = 0;
  for (const hook of BUILTIN_CHAINS[t.name]) {
    walk++;
    const start = g.index.get(hook);
    if (start === undefined) continue;
    const bit = HOOK_BITS[hook];
    stack.push(start);
    while (stack.length) {
      const k = stack.pop()!;
      if (seen[k] === walk) continue;
      seen[k] = walk;
      if ((allowed[k] & bit) === 0) hookIssues(t, g, k, hook, issues);
      const out = g.edges[k];
      for (let q = 0; q < out.length; q++) if (seen[out[q]] !== walk) stack.push(out[q]);
    }
  }
}

/**
 * The messages for chain `k` reached from `hook`: one for each hook-limited extension of its rules
 * (in rule order, matches before the target) that the hook is not among. Chains with a repeated
 * name are all read, the last one's walk standing for them.
 */
function hookIssues(t: Table, g: Graph, k: number, hook: Hook, issues: Issue[]): void {
  const hooked = hookLimited();
  const n = g.chains[k].name;
  for (let c = 0; c < g.chains.length; c++) {
    if (c !== k && (g.chains[c].name !== n || g.index.get(n) !== k)) continue;
    for (const r of g.chains[c].rules) {
      const found: [Extension, unknown][] = [];
      for (const m of r.matches) if (m.kind === 'match' && hooked.matches.has(m.name)) found.push([getMatch(m.name)!, m.info]);
      if (r.target?.kind === 'extension' && hooked.targets.has(r.target.name)) found.push([getTarget(r.target.name)!, r.target.info]);
      for (const [e, info] of found) {
        const hooks = e.hooksFor?.(info) ?? e.hooks;
        if (hooks && !hooks.includes(hook))
          issues.push(err(r.line ?? 0, 1, `${e.name}: used from hook ${hook}${n !== hook ? ` (through chain ${n})` : ''}, but only valid from ${hooks.join('/')}`, 'wrong-hook'));
      }
    }
  }
}

let hookedCache: { matches: Set<string>; targets: Set<string> } | undefined;
/** Names of the registered extensions that declare hooks (fixed or option-dependent), computed once. */
function hookLimited(): { matches: Set<string>; targets: Set<string> } {
  if (!hookedCache) {
    hookedCache = { matches: new Set(), targets: new Set() };
    for (const e of allExtensions()) if (e.hooks || e.hooksFor) (e.kind === 'match' ? hookedCache.matches : hookedCache.targets).add(e.name);
  }
  return hookedCache;
}
