/** `podtables convert`: read any ruleset text form, print it in another. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NameTables } from '../extensions/types';
import { systemNames } from '../kernel/names';
import { InputError } from '../model/issue';
import { TABLE_NAMES, type Ruleset, type TableName } from '../model/ruleset';
import { parseAny, type InputFormat } from '../syntax/index';
import { rulesetToJson } from '../syntax/json';
import { listRuleset } from '../syntax/list';
import { printS } from '../syntax/rules-s';
import { saveRuleset } from '../syntax/save';
import { CliError, readInput, report } from './io';

/**
 * This machine's names as iptables -L resolves addresses without -n: /etc/hosts first, then
 * /etc/networks (IPv4 only), the first name of an address winning, as gethostbyaddr and
 * getnetbyaddr answer. DNS is not asked: podtables never sends queries.
 */
export function localNames(): NameTables {
  const hosts = new Map<string, string>();
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  for (const line of read('/etc/hosts').split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length >= 2 && !hosts.has(f[0])) hosts.set(f[0], f[1]);
  }
  for (const line of read('/etc/networks').split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length >= 2 && /^\d+(\.\d+){0,3}$/.test(f[1])) {
      const parts = f[1].split('.');
      while (parts.length < 4) parts.push('0');
      const addr = parts.join('.');
      if (!hosts.has(addr)) hosts.set(addr, f[0]);
    }
  }
  return { ...systemNames(), hosts };
}

/** The table -S and -L print when -t is not given: filter as iptables does, or the only table there is. */
function defaultTable(rs: Ruleset): TableName {
  if (rs.tables.length === 0 || rs.tables.some((t) => t.name === 'filter')) return 'filter';
  return rs.tables[0].name;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('read a ruleset (iptables-save, iptables commands, an iptables -L listing or JSON) and print it in another form')
    .option('--from <format>', 'input format: auto, save, commands, list or json', 'auto')
    .option('--to <format>', 'output format: save, S, list or json', 'save')
    .option('-t, --table <table>', 'the table to print (S, list; filter by default), and of input that does not name one')
    .option('-6, --ipv6', 'the input is an IPv6 ruleset (guessed when not given)')
    .option('-n, --numeric', 'list: numeric addresses, ports and protocols')
    .option('-v, --verbose', 'list: counters and interfaces; S: counters')
    .option('-x, --exact', 'list: exact counter values')
    .option('--line-numbers', 'list: rule numbers')
    .option('--counters', 'save: keep packet and byte counters')
    .argument('[chain]', 'only this chain (S and list)')
    .argument('[file]', 'input file, or - for standard input', '-')
    .addHelpText('after', '\nExamples:\n  podtables convert --to list -n -v -t nat rules.save\n  podtables convert --to S -t nat PROXY_INIT_REDIRECT rules.save\n  iptables -L -n -v | podtables convert --from list --to save -\n')
    .action((chainArg: string | undefined, fileArg: string, o, cmd: Command) => {
      // one positional means the file
      let chain = chainArg, file = fileArg;
      if (cmd.args.length === 1) {
        file = chainArg ?? '-';
        chain = undefined;
      }
      if (!['auto', 'save', 'commands', 'list', 'json'].includes(o.from)) throw new CliError(`--from: unknown format '${o.from}' (auto, save, commands, list, json)`);
      if (!['save', 'S', 'list', 'json'].includes(o.to)) throw new CliError(`--to: unknown format '${o.to}' (save, S, list, json)`);
      if (o.table !== undefined && !(TABLE_NAMES as readonly string[]).includes(o.table))
        throw new CliError(`-t: unknown table '${o.table}' (${TABLE_NAMES.join(', ')})`);
      if (chain !== undefined && o.to !== 'S' && o.to !== 'list') throw new CliError(`a chain (${chain}) can only be given with --to S or --to list`);
      const text = readInput(file);
      const names = localNames();
      const res = parseAny(text, { format: o.from as InputFormat | 'auto', family: o.ipv6 ? 'ipv6' : undefined, table: o.table, names });
      report(res.issues, file === '-' ? '<stdin>' : file, text);
      const table = (o.table as TableName | undefined) ?? defaultTable(res.ruleset);
      let out: string;
      try {
        switch (o.to) {
          case 'save':
            out = saveRuleset(res.ruleset, { counters: o.counters, table: o.table });
            break;
          case 'S':
            out = printS(res.ruleset, { table, chain, counters: !!o.verbose });
            break;
          case 'list':
            out = listRuleset(res.ruleset, { table, chain, numeric: !!o.numeric, verbose: !!o.verbose, exact: !!o.exact, lineNumbers: !!o.lineNumbers, names });
            break;
          default:
            out = rulesetToJson(res.ruleset);
        }
      } catch (e) {
        if (e instanceof InputError) throw new CliError(e.issues.map((i) => i.message).join('\n'));
        throw e;
      }
      process.stdout.write(out);
    });
}
