/**
 * Applying commands to a ruleset as iptables-restore and iptables do: chains are created, flushed,
 * deleted and filled; errors carry the line they came from.
 */
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { BUILTIN_CHAINS, emptyTable, isBuiltin, TABLE_NAMES, type Chain, type Rule, type Ruleset, type Table, type TableName } from '../model/ruleset';
import type { Command } from './command';
import { allExtensions, getMatch, getTarget } from '../extensions/index';
import type { Extension } from '../extensions/types';
import { saveRuleSpec } from './save';

/** A ruleset under construction, with chain indexes for fast lookup. */
export class RulesetBuilder {
  private tables = new Map<TableName, { table: Table; chains: Map<string, Chain> }>();

  constructor(public family: Family) {}

  /** The table, created with its built-in chains on first use (as the kernel does). */
  table(name: TableName): { table: Table; chains: Map<string, Chain> } {
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

  /** Apply one parsed command; problems become issues at `line`. */
  apply(tname: TableName, cmd: Command, line: number, column: number, issues: Issue[]): void {
    const t = this.table(tname);
    if (cmd.op === 'append') {
      // the hot path of a dump: no closure, no spread
      const c = t.chains.get(cmd.chain);
      if (!c) issues.push(err(line, column, `chain \`${cmd.chain}' does not exist in table \`${tname}'`, 'no-chain'));
      else for (const r of cmd.rules) c.rules.push(r);
      return;
    }
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

/** Jumps to missing chains and jump loops are refused, as the kernel refuses them at commit. */
export function checkTable(t: Table, issues: Issue[]): void {
  const names = new Map<string, Chain>();
  for (const c of t.chains) names.set(c.name, c);
  const edges = new Map<string, string[]>();
  for (const c of t.chains) {
    const out: string[] = [];
    for (const r of c.rules) {
      const tg = r.target;
      if (tg?.kind === 'jump' || tg?.kind === 'goto') {
        if (!names.has(tg.chain) || isBuiltin(t.name, tg.chain)) {
          issues.push(err(r.line ?? 0, 1, `Couldn't load target \`${tg.chain}': No such file or directory (table ${t.name}, chain ${c.name})`, 'no-chain'));
        } else out.push(tg.chain);
      }
    }
    edges.set(c.name, out);
  }
  if (findLoop(t, names, edges, issues)) return;
  checkHooks(t, names, edges, issues);
}

/**
 * Depth-first search from every chain with an explicit stack (a kube-proxy dump has 40,000
 * chains); a chain met again while still on the stack closes a loop. The path is only built then.
 */
function findLoop(t: Table, names: Map<string, Chain>, edges: Map<string, string[]>, issues: Issue[]): boolean {
  const state = new Map<string, 1 | 2>();
  const order = [...BUILTIN_CHAINS[t.name], ...t.chains.map((c) => c.name)];
  for (const root of order) {
    if (state.has(root)) continue;
    const stack: { name: string; next: number }[] = [{ name: root, next: 0 }];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const out = edges.get(top.name) ?? [];
      if (top.next >= out.length) {
        state.set(top.name, 2);
        stack.pop();
        continue;
      }
      const m = out[top.next++];
      const s = state.get(m);
      if (s === 2) continue;
      if (s === 1) {
        const path = stack.map((f) => f.name);
        const cycle = [...path.slice(path.indexOf(m)), m];
        issues.push(err(names.get(top.name)?.rules[0]?.line ?? 0, 1, `jump loop in table ${t.name}: ${cycle.join(' -> ')}`, 'loop'));
        return true;
      }
      state.set(m, 1);
      stack.push({ name: m, next: 0 });
    }
  }
  return false;
}

/**
 * Extensions limited to some hooks (owner, REDIRECT, …, or by their options: policy --dir in,
 * TCPMSS --clamp-mss-to-pmtu) must not be reachable from others, as checkentry refuses them.
 */
function checkHooks(t: Table, names: Map<string, Chain>, edges: Map<string, string[]>, issues: Issue[]): void {
  // only chains holding a hook-limited extension need a walk; most tables have none
  const hooked = hookLimited();
  const limited = new Map<string, { rule: Rule; name: string; hooks: readonly string[] }[]>();
  const note = (chain: string, rule: Rule, e: Extension, info: unknown) => {
    const hooks = e.hooksFor?.(info) ?? e.hooks;
    if (!hooks) return;
    let l = limited.get(chain);
    if (!l) limited.set(chain, (l = []));
    l.push({ rule, name: e.name, hooks });
  };
  for (const c of t.chains)
    for (const r of c.rules) {
      for (const m of r.matches) if (m.kind === 'match' && hooked.matches.has(m.name)) note(c.name, r, getMatch(m.name)!, m.info);
      if (r.target?.kind === 'extension' && hooked.targets.has(r.target.name)) note(c.name, r, getTarget(r.target.name)!, r.target.info);
    }
  if (limited.size === 0) return;
  const none: string[] = [];
  for (const hook of BUILTIN_CHAINS[t.name]) {
    const seen = new Set<string>();
    const stack: string[] = [hook];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      const l = limited.get(n);
      if (l)
        for (const { rule: r, name, hooks } of l)
          if (!hooks.includes(hook))
            issues.push(err(r.line ?? 0, 1, `${name}: used from hook ${hook}${n !== hook ? ` (through chain ${n})` : ''}, but only valid from ${hooks.join('/')}`, 'wrong-hook'));
      for (const m of edges.get(n) ?? none) if (!seen.has(m)) stack.push(m);
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
