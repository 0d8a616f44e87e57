/** `podtables kube-proxy`: Kubernetes Services and EndpointSlices to the rules kube-proxy writes on a node. */
import type { Command } from 'commander';
import { formatIssue } from '../model/issue';
import { parseCidr, parseIP, type Family } from '../model/addr';
import { emptyObjects, generate, readObjects, renderNft, renderRestore, renderSave } from '../mesh/kube-proxy/index';
import { CliError, readInput } from './io';

/** Exit code when rules were written but some objects were invalid and skipped. */
export const EXIT_SKIPPED = 3;

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** Add `kube-proxy` to the program. */
export function register(program: Command): void {
  program
    .command('kube-proxy')
    .description("write the iptables rules kube-proxy's iptables mode makes on a node for the given Services and EndpointSlices")
    .requiredOption('--objects <file...>', 'YAML or JSON files with Service, EndpointSlice and Endpoints objects (several documents, kind: List; - for stdin)')
    .option('--cluster-cidr <cidr>', 'pod CIDR(s), comma-separated or repeated; traffic from elsewhere to a cluster IP is masqueraded', collect, [])
    .option('--node-ip <ip>', "this node's address(es), comma-separated or repeated", collect, [])
    .option('--hostname <name>', 'node name: endpoints with this nodeName are local', '')
    .option('--masquerade-bit <bit>', 'bit of the packet mark that asks for masquerade (0-31)', '14')
    .option('--family <family>', 'ipv4 or ipv6 (kube-proxy runs one of each on a dual-stack node)', 'ipv4')
    .option('--format <format>', 'save (iptables-save of the node), restore (kube-proxy\'s iptables-restore --noflush input) or nft (nftables mode)', 'save')
    .addHelpText(
      'after',
      `
Service ports are emitted sorted by namespace/name:port, then protocol (kube-proxy itself walks a
Go map, so its order varies between syncs; the rules are the same). Exit code ${EXIT_SKIPPED}: rules were
written but some objects were invalid and skipped (each is named on stderr); 2: bad flags or input.

Example:
  podtables kube-proxy --objects services.yaml slices.yaml --cluster-cidr 10.244.0.0/16 --hostname node-1
`,
    )
    .action((o) => {
      const family = o.family as Family;
      if (family !== 'ipv4' && family !== 'ipv6') throw new CliError(`--family: '${o.family}' is not ipv4 or ipv6`);
      if (!['save', 'restore', 'nft'].includes(o.format)) throw new CliError(`--format: unknown format '${o.format}' (save, restore, nft)`);
      if (!/^\d+$/.test(o.masqueradeBit) || Number(o.masqueradeBit) > 31) throw new CliError(`--masquerade-bit: '${o.masqueradeBit}' is not a number from 0 to 31`);
      for (const c of o.clusterCidr as string[])
        if (typeof parseCidr(c, c.includes(':') ? 'ipv6' : 'ipv4') === 'string' || !c.includes('/')) throw new CliError(`--cluster-cidr: '${c}' is not a CIDR`);
      for (const ip of o.nodeIp as string[]) if (!parseIP(ip)) throw new CliError(`--node-ip: '${ip}' is not an IP address`);
      const objs = emptyObjects();
      const texts = new Map<string, string>();
      for (const f of o.objects as string[]) {
        const name = f === '-' ? '<stdin>' : f;
        const text = readInput(f);
        texts.set(name, text);
        const before = objs.issues.length;
        readObjects(text, name, objs);
        for (const i of objs.issues.slice(before)) process.stderr.write(formatIssue({ ...i, message: i.message.replace(`${name}: `, '') }, name) + '\n');
      }
      const options = { family, hostname: o.hostname, nodeIPs: o.nodeIp, clusterCidrs: o.clusterCidr, masqueradeBit: Number(o.masqueradeBit) };
      const gen = generate(objs, options);
      for (const i of gen.issues) process.stderr.write(`podtables: ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}\n`);
      const out = o.format === 'nft' ? renderNft(gen, options) : o.format === 'restore' ? renderRestore(gen) : renderSave(gen);
      process.stdout.write(out);
      if (objs.skipped > 0) throw new CliError(`${objs.skipped} object(s) skipped; rules written for the rest`, EXIT_SKIPPED);
    });
}
