/**
 * Applying commands to a ruleset as iptables-restore and iptables do: chains are created, flushed,
 * deleted and filled; errors carry the line they came from.
 */
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { BUILTIN_CHAINS, emptyTable, isBuiltin, TABLE_NAMES, type Chain, type Rule, type Ruleset, type Table, type TableName } from '../model/ruleset';
import type { Command } from './command';
import { getMatch, getTarget } from '../extensions/index';
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
    this.tables.delete(name);
    this.table(name);
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
    const chain = (name: string | undefined): Chain | undefined => {
      const c = name === undefined ? undefined : t.chains.get(name);
      if (!c) issues.push(err(line, column, `chain \`${name}' does not exist in table \`${tname}'`, 'no-chain'));
      return c;
    };
    switch (cmd.op) {
      case 'append': {
        const c = chain(cmd.chain);
        if (c) c.rules.push(...cmd.rules);
        return;
      }
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

  /** The finished ruleset, tables in the kernel's order, with jump targets and loops checked. */
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
  const names = new Map(t.chains.map((c) => [c.name, c]));
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
  // depth-first search from every chain; a back edge is a loop
  const state = new Map<string, 1 | 2>();
  const visit = (n: string, path: string[]): boolean => {
    const s = state.get(n);
    if (s === 2) return false;
    if (s === 1) {
      issues.push(err(names.get(path[path.length - 1])?.rules[0]?.line ?? 0, 1, `jump loop in table ${t.name}: ${[...path.slice(path.indexOf(n)), n].join(' -> ')}`, 'loop'));
      return true;
    }
    state.set(n, 1);
    for (const m of edges.get(n) ?? []) if (visit(m, [...path, m])) return true;
    state.set(n, 2);
    return false;
  };
  for (const c of BUILTIN_CHAINS[t.name]) visit(c, [c]);
  for (const c of t.chains) if (visit(c.name, [c.name])) return;
  checkHooks(t, names, edges, issues);
}

/** Extensions limited to some hooks (owner, REDIRECT, …) must not be reachable from others. */
function checkHooks(t: Table, names: Map<string, Chain>, edges: Map<string, string[]>, issues: Issue[]): void {
  for (const hook of BUILTIN_CHAINS[t.name]) {
    const seen = new Set<string>();
    const stack: string[] = [hook];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      for (const r of names.get(n)?.rules ?? []) {
        const exts = [
          ...r.matches.filter((m) => m.kind === 'match').map((m) => getMatch(m.name)),
          r.target?.kind === 'extension' ? getTarget(r.target.name) : undefined,
        ];
        for (const e of exts)
          if (e?.hooks && !e.hooks.includes(hook))
            issues.push(err(r.line ?? 0, 1, `${e.name}: used from hook ${hook}${n !== hook ? ` (through chain ${n})` : ''}, but only valid from ${e.hooks.join('/')}`, 'wrong-hook'));
      }
      stack.push(...(edges.get(n) ?? []));
    }
  }
}
