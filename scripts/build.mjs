// Build the published CLI into dist/:
//   podtables.cjs        the entry: picks the bundle of the command being run (src/cli/launch.ts)
//   cli/<command>.cjs    one bundle per command (src/cli/commands.json), with only its own code;
//                        init-linkerd.cjs and the like for a command of one mesh
//   cli/all.cjs          every command, for help and unknown words (src/cli/main.ts)
//   cli/cni-plugin.cjs   the CNI plugin alone, as the runtime calls it once per pod
//   cli/*.cjs.cache      V8's code cache of each bundle, made here by this node
// Init containers and CNI ADDs run once per pod, so start-up is what they cost: a bundle of one
// command, loaded as CommonJS from its code cache, starts in a fraction of the time of the whole
// program as ES modules.
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Script } from 'node:vm';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const commands = JSON.parse(readFileSync(join(ROOT, 'src/cli/commands.json'), 'utf8'));

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // koffi is a native module (the FFI of `podtables proxy`): required at run time, never bundled
  external: ['koffi'],
  // CommonJS has no import.meta: the few modules that need their own location get it from __filename
  define: { 'import.meta.url': '__pt_import_meta_url' },
  banner: { js: 'var __pt_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
};

// Bundles whose plain command lines are read without commander (src/cli/flags.ts): what a pod's
// init container runs
const QUICK = { 'init linkerd': ['init', 'quickInitLinkerd'] };

/** The entry of one command's bundle: its register functions, its quick reader if any, and the shared runner. */
const entryOf = (name) => {
  const lines = ["import { runCli, startCli } from './src/cli/program';"];
  const regs = commands[name].map(([file, fn], i) => {
    lines.push(`import { ${fn} as r${i} } from './src/cli/${file}';`);
    return `r${i}`;
  });
  if (QUICK[name]) lines.push(`import { ${QUICK[name][1]} as quick } from './src/cli/${QUICK[name][0]}';`);
  lines.push(`startCli(() => runCli(process.argv, [${regs.join(', ')}]${QUICK[name] ? ', quick' : ''}));`);
  return lines.join('\n');
};

rmSync(DIST, { recursive: true, force: true });
mkdirSync(join(DIST, 'cli'), { recursive: true });
await Promise.all([
  build({ ...common, entryPoints: ['src/cli/launch.ts'], outfile: join(DIST, 'podtables.cjs') }),
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: join(DIST, 'cli/all.cjs') }),
  build({ ...common, entryPoints: ['src/cli/cni-plugin.ts'], outfile: join(DIST, 'cli/cni-plugin.cjs') }),
  // `init linkerd` is bundled as init-linkerd (src/cli/argv.ts, bundleFile)
  ...Object.keys(commands).map((name) => {
    const file = name.replace(' ', '-');
    return build({ ...common, stdin: { contents: entryOf(name), resolveDir: ROOT, sourcefile: `cli-${file}.ts`, loader: 'ts' }, outfile: join(DIST, `cli/${file}.cjs`) });
  }),
]);

// The code cache of a script's top level (what runs before the command's own work); functions
// compiled later are compiled on first call, as without a cache.
for (const f of readdirSync(join(DIST, 'cli')).filter((f) => f.endsWith('.cjs'))) {
  const file = join(DIST, 'cli', f);
  const source = readFileSync(file, 'utf8');
  // the launcher runs a bundle without a loader for ES modules: a dynamic import left in it would fail at run time
  if (source.split('\n').some((l) => /\bimport\(/.test(l) && !l.trimStart().startsWith('//'))) throw new Error(`${f}: a dynamic import() is left in the bundle`);
  writeFileSync(`${file}.cache`, new Script(Module.wrap(source), { filename: file }).createCachedData());
}

// The commands a pod waits on run once here, so that their caches also hold what they compile
// as they work: the flags, the rules, the plan, the apply, the API answers. Nothing on the system
// is read or changed: PATH holds only stand-ins for iptables-restore and iptables-save (and sh,
// which runs them), and the plugin reads a meshed pod from a plain-HTTP stand-in for the API on
// loopback, then stops where it would enter the pod's namespace.
const warmDir = mkdtempSync(join(tmpdir(), 'podtables-build-'));
const api = createServer((req, res) => {
  const pod = { kind: 'Pod', metadata: { name: 'warm', namespace: 'warm', annotations: {} }, spec: { containers: [{ name: 'app' }, { name: 'linkerd-proxy' }] } };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(req.url.includes('/pods/') ? pod : { kind: 'Namespace', metadata: { name: 'warm' } }));
});
try {
  const bin = join(warmDir, 'bin');
  mkdirSync(bin);
  symlinkSync('/bin/sh', join(bin, 'sh'));
  for (const fam of ['iptables', 'ip6tables']) {
    writeFileSync(join(bin, `${fam}-legacy-restore`), '#!/bin/sh\nwhile read -r line; do :; done\n', { mode: 0o755 });
    writeFileSync(join(bin, `${fam}-legacy-save`), '#!/bin/sh\nprintf \'*nat\\n:PREROUTING ACCEPT [0:0]\\n:INPUT ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n\'\n', { mode: 0o755 });
  }
  await new Promise((r) => api.listen(0, '127.0.0.1', r));
  const kubeconfig = join(warmDir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({ clusters: [{ name: 'w', cluster: { server: `http://127.0.0.1:${api.address().port}` } }], users: [{ name: 'w', user: { token: 'warm' } }], contexts: [{ name: 'w', context: { cluster: 'w', user: 'w' } }], 'current-context': 'w' }));
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'warm', type: 'linkerd-cni', kubernetes: { kubeconfig }, linkerd: { 'proxy-uid': 2102, 'inbound-ports-to-ignore': ['4190', '4191'] } });
  const warm = [
    { args: ['init', 'linkerd', '-p', '4143', '-o', '4140', '-u', '2102', '--inbound-ports-to-ignore', '4190,4191', '--outbound-ports-to-ignore', '4567,4568'], env: {} },
    { args: ['cni'], env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'warm', CNI_NETNS: join(warmDir, 'netns'), CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=warm;K8S_POD_NAME=warm' }, input: conf },
  ];
  for (const w of warm) {
    // asynchronously: the stand-in API answers from this process meanwhile
    const r = await new Promise((resolve) => {
      const p = execFile(process.execPath, [join(DIST, 'podtables.cjs'), ...w.args], { env: { PATH: bin, PODTABLES_WRITE_CODE_CACHE: '1', ...w.env } }, (error, stdout, stderr) => resolve({ error, stdout, stderr }));
      p.stdin.end(w.input ?? '');
    });
    // a warm-up that cannot run leaves the top-level cache, which is still valid
    if (r.error && !r.stdout) console.warn(`warm-up of ${w.args[0]} did not run: ${r.error.message}`);
  }
} finally {
  api.close();
  rmSync(warmDir, { recursive: true, force: true });
}
