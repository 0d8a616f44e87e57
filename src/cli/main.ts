/**
 * The podtables command line. A small dispatcher: it loads only the command it runs (each
 * command's module is its own chunk of the bundle), because init containers and CNI plugins run
 * once per pod and pay for every module loaded at start-up.
 */
import type { Command } from 'commander';

type Register = (program: Command) => void;

/** Each command name and the modules that register it (`init` has Linkerd's and Istio's). */
const COMMANDS: Record<string, () => Promise<Register[]>> = {
  convert: async () => [(await import('./convert')).register],
  trace: async () => [(await import('./trace')).register],
  demo: async () => [(await import('./demo')).register],
  snapshot: async () => [(await import('./snapshot')).register],
  init: async () => [(await import('./init')).register, (await import('./istio')).registerIstio],
  clean: async () => [(await import('./clean')).register, (await import('./istio')).registerIstio],
  verify: async () => [(await import('./verify')).register, (await import('./istio')).registerIstio],
  proxy: async () => [(await import('./proxy')).register],
  'kube-proxy': async () => [(await import('./kube-proxy')).register],
  cni: async () => [(await import('./cni-command')).register],
  validate: async () => [(await import('./validate')).register],
};

async function main(argv: string[]): Promise<number> {
  const words = argv.slice(2);
  // the container runtime calls the plugin as `podtables cni` with everything in the environment
  if (words.length === 1 && words[0] === 'cni') return (await import('./cni-command')).cniPluginMain();
  const [{ Command, CommanderError }, { CliError }] = await Promise.all([import('commander'), import('./io')]);
  const program = new Command();
  program
    .name('podtables')
    .description('Set up, trace and explain the packet paths of Kubernetes pods and nodes through Linux netfilter')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const name = words.find((w) => !w.startsWith('-'));
  const loaders = name && COMMANDS[name] ? [COMMANDS[name]] : Object.values(COMMANDS);
  const registered = new Set<Register>();
  for (const load of loaders)
    for (const register of await load())
      if (!registered.has(register)) {
        registered.add(register);
        register(program);
      }
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

// a reader that stops early (`| head`) is not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv).then((code) => {
  // an action may have set its own exit code (verify's drift, validate's missing rules)
  if (code !== 0) process.exitCode = code;
});
