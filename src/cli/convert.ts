/** `podtables convert`: read any ruleset text form, print it in another. */
import type { Command } from 'commander';
import { parseAny, type InputFormat } from '../syntax/index';
import { saveRuleset } from '../syntax/save';
import { CliError, readInput, report } from './io';

export function register(program: Command): void {
  program
    .command('convert')
    .description('read a ruleset (iptables-save, iptables commands or an iptables -L listing) and print it in another form')
    .option('--from <format>', 'input format: auto, save, commands or list', 'auto')
    .option('--to <format>', 'output format: save, S, list or json', 'save')
    .option('-t, --table <table>', 'only this table')
    .option('-6, --ipv6', 'the input is an IPv6 ruleset (guessed when not given)')
    .option('-n, --numeric', 'list: numeric addresses and ports')
    .option('-v, --verbose', 'list: counters and interfaces')
    .option('-x, --exact', 'list: exact counter values')
    .option('--line-numbers', 'list: rule numbers')
    .option('--counters', 'save: keep packet and byte counters')
    .argument('[chain]', 'only this chain (S and list)')
    .argument('[file]', 'input file, or - for standard input', '-')
    .addHelpText('after', '\nExample:\n  podtables convert --to list -n -v -t nat rules.save\n')
    .action((chainArg: string | undefined, fileArg: string, o) => {
      // one positional means the file
      let chain = chainArg, file = fileArg;
      if (chainArg !== undefined && fileArg === '-' && !process.argv.includes('-')) {
        file = chainArg;
        chain = undefined;
      }
      if (!['auto', 'save', 'commands', 'list'].includes(o.from)) throw new CliError(`--from: unknown format '${o.from}' (auto, save, commands, list)`);
      if (!['save', 'S', 'list', 'json'].includes(o.to)) throw new CliError(`--to: unknown format '${o.to}' (save, S, list, json)`);
      const text = readInput(file);
      const res = parseAny(text, { format: o.from as InputFormat | 'auto', family: o.ipv6 ? 'ipv6' : undefined });
      report(res.issues, file === '-' ? '<stdin>' : file, text);
      let out: string;
      switch (o.to) {
        case 'save':
          out = saveRuleset(res.ruleset, { counters: o.counters, table: o.table });
          break;
        case 'json':
          out = JSON.stringify(res.ruleset, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
          break;
        default:
          throw new CliError(`--to ${o.to} is not supported yet`);
      }
      process.stdout.write(out);
      void chain;
    });
}
