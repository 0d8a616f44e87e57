/**
 * The podtables command line, every command in one program: the development entry and what the
 * tests bundle. A small dispatcher: it loads only the command it runs, because init containers
 * and CNI plugins run once per pod and pay for every module loaded at start-up. The published
 * build goes further and bundles each command on its own (scripts/build.mjs, launch.ts).
 */
import { commandName, isPluginCall } from './argv';
import { COMMANDS } from './loaders';
import { runCli, startCli, type Register } from './program';

async function main(argv: string[]): Promise<number> {
  // the container runtime calls the plugin as `podtables cni` with everything in the environment
  if (isPluginCall(argv)) return (await import('./cni-command')).cniPluginMain();
  const name = commandName(argv);
  const loaders = name !== undefined && Object.hasOwn(COMMANDS, name) ? [COMMANDS[name]] : Object.values(COMMANDS);
  const registers: Register[] = [];
  for (const load of loaders) registers.push(...(await load()));
  return runCli(argv, registers);
}

startCli(() => main(process.argv));
