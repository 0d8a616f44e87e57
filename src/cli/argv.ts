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

/**
 * Which bundle of the published build (dist/cli/NAME.cjs) runs this command line: the mesh's own
 * for `init linkerd` and the like (a pod's init container loads no Istio code), the command's
 * for the command, a small one for `--version`, every command for anything else.
 */
export function bundleFor(argv: string[]): string {
  if (isPluginCall(argv)) return 'cni-plugin';
  // every bundle knows the version: a small one answers it
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) return 'validate';
  const name = commandName(argv);
  if (name === undefined || name.includes(' ') || !Object.hasOwn(commands, name)) return 'all';
  const sub = `${name} ${argv[argv.indexOf(name) + 1]}`;
  return Object.hasOwn(commands, sub) ? bundleFile(sub) : name;
}

/** The file name (without .cjs) of a commands.json entry: `init linkerd` → `init-linkerd`. */
export function bundleFile(entry: string): string {
  return entry.replace(' ', '-');
}
