/**
 * Reading iptables-save output and iptables-restore input: `*table` … `COMMIT` blocks, chain
 * lines, `[p:b]` counters, rule and chain commands, comments, blank lines and CRLF.
 */
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import type { NameTables } from '../extensions/types';
import { TABLE_NAMES, type Ruleset, type TableName } from '../model/ruleset';
import { RulesetBuilder } from './builder';
import { parseCommand } from './command';
import { tokenize } from './tokenize';

export interface RestoreOptions {
  family?: Family;
  /** `--noflush`: a table block adds to what is there instead of replacing it. */
  noflush?: boolean;
  /** Names the host resolves for options that take them (owner). */
  names?: NameTables;
}

export interface ParseResult {
  ruleset: Ruleset;
  issues: Issue[];
}

/** Guess the family of a dump from its addresses when the caller did not say. */
export function guessFamily(text: string): Family {
  if (/ip6tables/.test(text.slice(0, 200))) return 'ipv6';
  if (/\s-[sd]\s+[0-9a-fA-F]*:[0-9a-fA-F:]*[/\s]|ipv6-icmp|icmp6|icmpv6/.test(text)) return 'ipv6';
  return 'ipv4';
}

/** Parse save/restore text into a ruleset and its issues (errors and warnings). */
export function parseRestore(text: string, opts: RestoreOptions = {}): ParseResult {
  const family = opts.family ?? guessFamily(text);
  const b = new RulesetBuilder(family);
  const issues: Issue[] = [];
  const lines = text.split('\n');
  let table: TableName | undefined;
  let tableLine = 0;
  const seen = new Set<TableName>();
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    let line = lines[n];
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const trimmed = line.trimStart();
    const indent = line.length - trimmed.length;
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (trimmed[0] === '*') {
      const name = trimmed.slice(1).trim();
      if (table) {
        issues.push({ severity: 'error', code: 'no-commit', message: `COMMIT expected before table \`${name}' (table \`${table}' opened at line ${tableLine})`, line: lineNo, column: indent + 1 });
        break;
      }
      if (!(TABLE_NAMES as readonly string[]).includes(name)) {
        issues.push({ severity: 'error', code: 'unknown-table', message: `unknown table \`${name}'`, line: lineNo, column: indent + 2 });
        break;
      }
      table = name as TableName;
      tableLine = lineNo;
      if (seen.has(table) && !opts.noflush)
        issues.push({ severity: 'warning', code: 'table-twice', message: `table \`${table}' given again: it replaces the earlier one, as iptables-restore does`, line: lineNo, column: indent + 1 });
      if (!opts.noflush) b.reset(table);
      else b.table(table);
      seen.add(table);
      continue;
    }
    if (trimmed === 'COMMIT' || trimmed.startsWith('COMMIT ')) {
      if (!table) {
        issues.push({ severity: 'error', code: 'no-table', message: 'COMMIT without a table', line: lineNo, column: indent + 1 });
        break;
      }
      table = undefined;
      continue;
    }
    if (!table) {
      issues.push({ severity: 'error', code: 'no-table', message: 'no table specified: expected `*table` before this line', line: lineNo, column: indent + 1 });
      break;
    }
    if (trimmed[0] === ':') {
      const m = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$/.exec(trimmed);
      if (!m) {
        issues.push({ severity: 'error', code: 'bad-chain-line', message: `bad chain line: expected \`:NAME POLICY [packets:bytes]'`, line: lineNo, column: indent + 1 });
        break;
      }
      const counters = m[3] !== undefined ? { packets: Number(m[3]), bytes: Number(m[4]) } : undefined;
      const before = issues.length;
      b.declare(table, m[1], m[2], counters, lineNo, issues);
      if (issues.length > before && issues.some((i) => i.severity === 'error')) break;
      continue;
    }
    let body = line;
    let counters: { packets: number; bytes: number } | undefined;
    let offset = 0;
    const cm = /^(\s*)\[(\d+):(\d+)\]\s*/.exec(line);
    if (cm) {
      counters = { packets: Number(cm[2]), bytes: Number(cm[3]) };
      offset = cm[0].length;
      body = line.slice(offset);
    }
    const tk = tokenize(body);
    if (tk.error) {
      issues.push({ severity: 'error', code: 'bad-quote', message: tk.error.message, line: lineNo, column: tk.error.column + offset });
      break;
    }
    for (const t of tk.tokens) t.column += offset;
    const p = parseCommand(tk.tokens, { family, table, line: lineNo, names: opts.names });
    issues.push(...p.issues);
    if (p.issues.some((i) => i.severity === 'error')) break;
    if (p.otherFamily || !p.command) continue;
    if (p.table && p.table !== table) {
      issues.push({ severity: 'error', code: 'table-in-restore', message: `-t ${p.table} is not allowed inside a restore block for table \`${table}'`, line: lineNo, column: indent + 1 });
      break;
    }
    if (counters && 'rules' in p.command && p.command.rules) for (const r of p.command.rules) r.counters = counters;
    const before = issues.length;
    b.apply(table, p.command, lineNo, indent + 1, issues);
    if (issues.length > before && issues.slice(before).some((i) => i.severity === 'error')) break;
  }
  if (table && !issues.some((i) => i.severity === 'error'))
    issues.push({ severity: 'error', code: 'no-commit', message: `COMMIT expected: table \`${table}' opened at line ${tableLine} is not committed`, line: lines.length, column: 1 });
  const ruleset = b.build(issues.some((i) => i.severity === 'error') ? [] : issues);
  return { ruleset, issues };
}
