/** What a podtables command line asks for, read before anything else is loaded. */
import commands from './commands.json';

/** The command a command line runs: its first word that is not a flag (undefined for `--help`). */
export function commandName(argv: string[]): string | undefined {
  return argv.slice(2).find((w) => !w.startsWith('-'));
}

/** Whether the command line is the CNI runtime calling the plugin (`podtables cni`, all else in the environment). */
export function isPluginCall(argv: string[]): boolean {
  return argv.length === 3 && argv[2] === 'cni';
}

/** Which bundle of the published build (dist/cli/NAME.cjs) runs this command line. */
export function bundleFor(argv: string[]): string {
  if (isPluginCall(argv)) return 'cni-plugin';
  const name = commandName(argv);
  return name !== undefined && Object.hasOwn(commands, name) ? name : 'all';
}
