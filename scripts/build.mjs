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
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

/** The entry of one command's bundle: its register functions, and the shared runner. */
const entryOf = (name) => {
  const lines = ["import { runCli, startCli } from './src/cli/program';"];
  const regs = commands[name].map(([file, fn], i) => {
    lines.push(`import { ${fn} as r${i} } from './src/cli/${file}';`);
    return `r${i}`;
  });
  lines.push(`startCli(() => runCli(process.argv, [${regs.join(', ')}]));`);
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

// The commands a pod waits on run once here with an empty PATH (no iptables, nothing on the
// system is read or changed), so that their caches also hold what they compile as they work: the
// flags, the rules, the plan. init --simulate stops where it would read the table; the plugin's
// ADD stops where it would read its kubeconfig.
const empty = mkdtempSync(join(tmpdir(), 'podtables-build-'));
try {
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'warm', type: 'linkerd-cni', kubernetes: { kubeconfig: join(empty, 'none') }, linkerd: { 'proxy-uid': 2102, 'inbound-ports-to-ignore': ['4190', '4191'] } });
  const warm = [
    { args: ['init', 'linkerd', '-p', '4143', '-o', '4140', '-u', '2102', '--inbound-ports-to-ignore', '4190,4191', '--simulate'], env: {} },
    { args: ['cni'], env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'warm', CNI_NETNS: join(empty, 'netns'), CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=warm;K8S_POD_NAME=warm' }, input: conf },
  ];
  for (const w of warm) {
    const r = spawnSync(process.execPath, [join(DIST, 'podtables.cjs'), ...w.args], { env: { PATH: empty, PODTABLES_WRITE_CODE_CACHE: '1', ...w.env }, input: w.input ?? '', encoding: 'utf8' });
    // a warm-up that cannot run leaves the top-level cache, which is still valid
    if (r.error) console.warn(`warm-up of ${w.args[0]} did not run: ${r.error.message}`);
  }
} finally {
  rmSync(empty, { recursive: true, force: true });
}
