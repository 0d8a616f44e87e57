/** The podtables command line: one file per command, registered here. */
import { Command, CommanderError } from 'commander';
import { register as convert } from './convert';
import { CliError } from './io';
// command imports (trace, demo, snapshot)
// command imports (init, clean, verify, proxy)
// command imports (kube-proxy)

const program = new Command();
program
  .name('podtables')
  .description('Set up, trace and explain the packet paths of Kubernetes pods and nodes through Linux netfilter')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

convert(program);
// commands (trace, demo, snapshot)
// commands (init, clean, verify, proxy)
// commands (kube-proxy)

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof CliError) {
      process.stderr.write(`podtables: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`podtables: internal error: ${(e as Error).stack}\n`);
    return 70;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
