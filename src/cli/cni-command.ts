/** `podtables cni` (the plugin itself, called by the container runtime) and `podtables cni install`. */
import type { Command } from 'commander';
import { existsSync, readFileSync, readSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, writeOut } from './io';

/** Spec versions the plugin speaks. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/**
 * Read all of standard input: with read(2) while it answers (process.stdin builds a stream, some
 * milliseconds on a pipe, which every ADD would pay), through the stream once a non-blocking pipe
 * has nothing yet (EAGAIN), keeping what was read.
 */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(1 << 16);
  try {
    for (let n; (n = readSync(0, buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
  }
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Run the plugin for the runtime: CNI_* environment and stdin in, the answer on stdout. */
export async function cniPluginMain(): Promise<number> {
  // VERSION is asked often and needs none of the rest
  if (process.env.CNI_COMMAND === 'VERSION') {
    writeOut(1, JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS }) + '\n');
    return 0;
  }
  const { runCni } = await import('./cni');
  const stdin = process.env.CNI_COMMAND === 'VERSION' ? '' : await readStdin();
  const a = await runCni(process.env, stdin);
  writeOut(1, a.stdout);
  return a.code;
}

const DEFAULT_PLUGIN = (kubeconfig: string) => ({
  name: 'linkerd-cni',
  type: 'linkerd-cni',
  log_level: 'info',
  kubernetes: { kubeconfig },
  linkerd: {
    'incoming-proxy-port': 4143,
    'outgoing-proxy-port': 4140,
    'proxy-uid': 2102,
    'ports-to-redirect': [],
    'inbound-ports-to-ignore': ['4190', '4191', '4567', '4568'],
    'outbound-ports-to-ignore': ['4567', '4568'],
    'subnets-to-ignore': [],
    simulate: false,
    'use-wait-flag': false,
    'iptables-mode': 'legacy',
    ipv6: false,
  },
});

export function register(program: Command): void {
  const cni = program
    .command('cni')
    .description('the chained CNI plugin: run by the container runtime with CNI_COMMAND and the network configuration on stdin')
    .addHelpText('after', '\nThe runtime calls it as the plugin binary; `podtables cni install` puts it in place on a node.\n')
    .action(async () => {
      process.exitCode = await cniPluginMain();
    });
  cni
    .command('install')
    .description('install the plugin on this node: copy it, write its kubeconfig, append it to every CNI configuration list, and keep it there until SIGTERM')
    .option('--cni-bin-dir <dir>', 'the host CNI bin directory, as mounted', '/host/opt/cni/bin')
    .option('--cni-net-dir <dir>', 'the host CNI configuration directory, as mounted', '/host/etc/cni/net.d')
    .option('--host-cni-net-dir <dir>', 'the same directory as the host sees it (for the kubeconfig path in our entry)', '/etc/cni/net.d')
    .option('--kubeconfig-name <name>', 'file name of the plugin kubeconfig', 'ZZZ-linkerd-cni-kubeconfig')
    .option('--plugin-config <file>', 'our entry in each plugin list, as JSON (default: linkerd-cni defaults; also $CNI_NETWORK_CONFIG)')
    .option('--service-account-dir <dir>', 'where the token and CA of the installer\'s service account are', '/var/run/secrets/kubernetes.io/serviceaccount')
    .option('--no-kubeconfig', 'do not write a kubeconfig (the configuration names one already)')
    .option('--once', 'install and exit instead of watching the directory')
    .action(async (o) => {
      const { appendEverywhere, installFiles, serviceAccountKubeconfig, uninstall } = await import('../kernel/cni-install');
      const log = (m: string) => process.stderr.write(`time="${new Date().toISOString()}" level=info msg=${JSON.stringify(m)}\n`);
      if (!existsSync(o.cniNetDir)) throw new CliError(`--cni-net-dir ${o.cniNetDir} does not exist`);
      const kubeconfigPath = join(o.hostCniNetDir, o.kubeconfigName);
      let pluginConf: any = DEFAULT_PLUGIN(kubeconfigPath);
      const text = o.pluginConfig ? readFileSync(o.pluginConfig, 'utf8') : process.env.CNI_NETWORK_CONFIG;
      if (text) {
        try {
          pluginConf = JSON.parse(text.replaceAll('__KUBECONFIG_FILEPATH__', kubeconfigPath));
        } catch (e) {
          throw new CliError(`${o.pluginConfig ?? '$CNI_NETWORK_CONFIG'}: not JSON: ${(e as Error).message}`);
        }
      }
      if (typeof pluginConf.type !== 'string' || !/^[\w.-]+$/.test(pluginConf.type)) throw new CliError('the plugin configuration needs a "type" naming the plugin file');
      let kubeconfig: string | null = null;
      if (o.kubeconfig !== false) {
        const host = process.env.KUBERNETES_SERVICE_HOST, port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
        if (!host) throw new CliError('KUBERNETES_SERVICE_HOST is not set: run inside a pod, or pass --no-kubeconfig');
        const sa = o.serviceAccountDir;
        try {
          kubeconfig = serviceAccountKubeconfig(host, port, readFileSync(join(sa, 'ca.crt')).toString('base64'), readFileSync(join(sa, 'token'), 'utf8').trim());
        } catch (e) {
          throw new CliError(`cannot read the service account in ${sa}: ${(e as Error).message}`);
        }
      }
      // the published entry and the plugin's own bundle with its code cache (scripts/build.mjs); this
      // command runs from dist/cli/cni.cjs, beside them
      const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
      const wanted = ['podtables.cjs', 'cli/cni-plugin.cjs', 'cli/cni-plugin.cjs.cache'];
      const missing = wanted.filter((f) => !existsSync(join(dist, f)));
      if (missing.length) throw new CliError(`cannot install the plugin: ${missing.map((f) => join(dist, f)).join(', ')} not found (run the published build: npm run build)`);
      const dataDir = join(o.cniBinDir, `${pluginConf.type}.d`);
      const files = wanted.map((f) => ({ from: join(dist, f), to: join(dataDir, f) }));
      // the node that runs this installer runs the plugin too, so the code cache it made fits
      files.push({ from: process.execPath, to: join(dataDir, 'node') });
      // --use-openssl-ca: node otherwise parses its ~140 bundled root certificates (about 30 ms) the
      // first time a CA is added, and the plugin adds the cluster's for its one API request
      // (its directory by parameter expansion: $(dirname) would start one more process per ADD)
      const launcher = `#!/bin/sh\n# podtables CNI plugin launcher\ncase $0 in */*) d="\${0%/*}" ;; *) d=. ;; esac\nd="$d/${pluginConf.type}.d"\nexec "$d/node" --use-openssl-ca "$d/podtables.cjs" cni\n`;
      const opts = { binDir: o.cniBinDir, netDir: o.cniNetDir, pluginConf, kubeconfigName: o.kubeconfigName, kubeconfig, plugin: { launcher, files } };
      installFiles(opts, log);
      appendEverywhere(opts, log);
      if (o.once) return;
      // another plugin (or its installer) may rewrite its configuration without us: put us back
      let timer: NodeJS.Timeout | undefined;
      const w = watch(o.cniNetDir, () => {
        clearTimeout(timer);
        timer = setTimeout(() => appendEverywhere(opts, log), 100);
      });
      await new Promise<void>((resolve) => {
        const stop = () => {
          w.close();
          clearTimeout(timer);
          uninstall(opts, log);
          resolve();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
