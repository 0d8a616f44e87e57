/**
 * Installing the CNI plugin on a node, as the linkerd-cni DaemonSet does: the plugin into the CNI
 * bin directory, a kubeconfig for it, and our entry appended to every network configuration list
 * in the CNI config directory. Every file is replaced atomically (write a temp file, rename), so a
 * runtime reading the directory never sees half a file.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** What to install and where. */
export interface InstallOptions {
  binDir: string;
  netDir: string;
  /** Our entry in each plugin list (the `type` must match the installed plugin's file name). */
  pluginConf: Record<string, unknown> & { type: string };
  /** The kubeconfig file name inside netDir, and its text (null: do not write one). */
  kubeconfigName: string;
  kubeconfig: string | null;
  /** Files that make up the plugin: the launcher and what it runs. */
  plugin: { launcher: string; files: { from: string; to: string }[] };
}

/** Write a file atomically: a temp file beside it, then rename. */
export function writeAtomic(path: string, text: string, mode = 0o644): void {
  const tmp = join(path, '..', `.${basename(path)}.tmp-${process.pid}`);
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

const isConfFile = (f: string) => /\.(conf|conflist|json)$/.test(f) && !f.startsWith('.');

/** Add our plugin to one configuration; returns the new text, or null when it is already there. */
export function withOurPlugin(text: string, ours: InstallOptions['pluginConf']): { text: string; list: boolean } | null {
  const conf = JSON.parse(text);
  if (Array.isArray(conf.plugins)) {
    if (conf.plugins.some((p: { type?: string }) => p.type === ours.type)) return null;
    conf.plugins.push(ours);
    return { text: JSON.stringify(conf, null, 2) + '\n', list: true };
  }
  // a single-plugin .conf becomes a list holding it and us
  const { cniVersion, name, ...plugin } = conf;
  return { text: JSON.stringify({ cniVersion, name, plugins: [{ cniVersion, ...plugin }, ours] }, null, 2) + '\n', list: false };
}

/** Remove our plugin from one configuration list; null when it was not there. */
export function withoutOurPlugin(text: string, type: string): string | null {
  const conf = JSON.parse(text);
  if (!Array.isArray(conf.plugins) || !conf.plugins.some((p: { type?: string }) => p.type === type)) return null;
  conf.plugins = conf.plugins.filter((p: { type?: string }) => p.type !== type);
  return JSON.stringify(conf, null, 2) + '\n';
}

/** Append our entry to every configuration in netDir; returns the files it changed. */
export function appendEverywhere(o: InstallOptions, log: (m: string) => void): string[] {
  const changed: string[] = [];
  for (const f of readdirSync(o.netDir).filter(isConfFile).sort()) {
    const path = join(o.netDir, f);
    let next: ReturnType<typeof withOurPlugin>;
    try {
      next = withOurPlugin(readFileSync(path, 'utf8'), o.pluginConf);
    } catch (e) {
      log(`skipping ${path}: not a CNI configuration (${(e as Error).message})`);
      continue;
    }
    if (!next) continue;
    if (next.list || f.endsWith('.conflist')) writeAtomic(path, next.text);
    else {
      // the runtime reads .conflist files as lists: write the list, then drop the old .conf
      const listPath = path.replace(/\.(conf|json)$/, '.conflist');
      writeAtomic(listPath, next.text);
      rmSync(path, { force: true });
      changed.push(listPath);
      log(`converted ${path} to ${listPath} with linkerd-cni appended`);
      continue;
    }
    changed.push(path);
    log(`appended linkerd-cni to ${path}`);
  }
  return changed;
}

/** Copy the plugin and write its kubeconfig. */
export function installFiles(o: InstallOptions, log: (m: string) => void): void {
  mkdirSync(o.binDir, { recursive: true });
  for (const f of o.plugin.files) {
    mkdirSync(join(f.to, '..'), { recursive: true });
    const tmp = `${f.to}.tmp-${process.pid}`;
    copyFileSync(f.from, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, f.to);
  }
  writeAtomic(join(o.binDir, o.pluginConf.type), o.plugin.launcher, 0o755);
  log(`installed ${join(o.binDir, o.pluginConf.type)}`);
  if (o.kubeconfig !== null) {
    writeAtomic(join(o.netDir, o.kubeconfigName), o.kubeconfig, 0o600);
    log(`wrote ${join(o.netDir, o.kubeconfigName)}`);
  }
}

/** Undo: our entry out of every list, our kubeconfig and plugin files removed. */
export function uninstall(o: InstallOptions, log: (m: string) => void): void {
  if (existsSync(o.netDir))
    for (const f of readdirSync(o.netDir).filter(isConfFile)) {
      const path = join(o.netDir, f);
      try {
        const next = withoutOurPlugin(readFileSync(path, 'utf8'), o.pluginConf.type);
        if (next) {
          writeAtomic(path, next);
          log(`removed linkerd-cni from ${path}`);
        }
      } catch {
        // not ours to judge: leave files we cannot read as they are
      }
    }
  rmSync(join(o.netDir, o.kubeconfigName), { force: true });
  rmSync(join(o.binDir, o.pluginConf.type), { force: true });
  for (const f of o.plugin.files) rmSync(f.to, { force: true });
  log('removed the plugin and its kubeconfig');
}

/** A kubeconfig for the plugin from the service account the installer runs as (JSON, which is YAML too). */
export function serviceAccountKubeconfig(host: string, port: string, caData: string, token: string): string {
  const server = host.includes(':') ? `https://[${host}]:${port}` : `https://${host}:${port}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server, 'certificate-authority-data': caData } }],
    users: [{ name: 'linkerd-cni', user: { token } }],
    contexts: [{ name: 'linkerd-cni-context', context: { cluster: 'local', user: 'linkerd-cni' } }],
    'current-context': 'linkerd-cni-context',
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
