/** `podtables snapshot`: capture a live host or namespace for offline tracing. */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { snapshot } from '../kernel/snapshot';
import { CliError } from './io';

export function register(program: Command): void {
  program
    .command('snapshot')
    .description('capture a host (rules of both backends, addresses, routes, listening sockets, forwarding) as JSON')
    .option('--netns <name>', 'capture this network namespace instead of the current one')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .addHelpText('after', '\nExample:\n  podtables snapshot --netns pod1 -o pod1.json && podtables trace --snapshot pod1.json tcp -> 10.96.0.10:80 uid 1000\n')
    .action(async (o: { netns?: string; output?: string }) => {
      if (o.netns !== undefined && !/^[A-Za-z0-9_.-]+$/.test(o.netns)) throw new CliError(`--netns: not a namespace name: '${o.netns}'`);
      let snap;
      try {
        snap = await snapshot(o.netns);
      } catch (e) {
        throw new CliError(`snapshot${o.netns ? ` of ${o.netns}` : ''}: ${(e as Error).message}`);
      }
      for (const w of snap.warnings) process.stderr.write(`podtables: warning: ${w}\n`);
      const text = JSON.stringify(snap, null, 2) + '\n';
      if (o.output) {
        try {
          writeFileSync(o.output, text);
        } catch (e) {
          throw new CliError(`${o.output}: cannot write: ${(e as Error).message}`);
        }
      } else process.stdout.write(text);
    });
}
