/**
 * The CNI plugin's own entry point, bundled on its own (no code splitting): the container runtime
 * starts it once per pod sandbox, so it loads only what the plugin needs, in one file.
 */
import { cniPluginMain } from './cni-command';

cniPluginMain().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`podtables cni: internal error: ${(e as Error).stack}\n`);
    process.exitCode = 70;
  },
);
