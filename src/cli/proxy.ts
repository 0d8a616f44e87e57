/** `podtables proxy`: a transparent proxy that reads SO_ORIGINAL_DST, logs it and relays (tests and demos). */
import type { Command } from 'commander';
import { parseIP } from '../model/addr';
import { CliError } from './io';

const port = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new CliError(`${flag}: invalid port "${v}" (1-65535)`);
  return Number(v);
};
const id = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 0xfffffffe) throw new CliError(`${flag}: invalid id "${v}"`);
  return Number(v);
};

/** `--inbound-source 127.0.0.6,::6`: at most one address of each family. */
function sources(v: string | undefined): { ipv4?: string; ipv6?: string } | undefined {
  if (v === undefined) return undefined;
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const a of v.split(',')) {
    const family = parseIP(a)?.family;
    if (!family) throw new CliError(`--inbound-source: invalid address "${a}"`);
    if (out[family]) throw new CliError(`--inbound-source: two ${family === 'ipv4' ? 'IPv4' : 'IPv6'} addresses ("${out[family]}" and "${a}"): give one per family`);
    out[family] = a;
  }
  return out;
}

/** Register `proxy`. */
export function register(program: Command): void {
  program
    .command('proxy')
    .description('accept redirected TCP connections, log their original destination (SO_ORIGINAL_DST) and relay them')
    .option('--inbound <port>', 'inbound listener port (the inbound redirect target, e.g. 4143)')
    .option('--outbound <port>', 'outbound listener port (the outbound redirect target, e.g. 4140)')
    .option('--uid <uid>', 'switch to this uid after binding (the proxy uid the rules let through)')
    .option('--gid <gid>', 'switch to this gid after binding (default: the uid)')
    .option('--inbound-source <addresses>', "relay inbound connections from this source address, one per family, comma-separated (Istio's envoy: 127.0.0.6,::6; an IPv6 one must be an address of the pod)")
    .option('--log-format <format>', "'plain' or 'json'", 'plain')
    .addHelpText('after', '\nExamples:\n  podtables proxy --inbound 4143 --outbound 4140 --uid 2102\n  podtables proxy --inbound 15006 --outbound 15001 --uid 1337 --inbound-source 127.0.0.6\n')
    .action(async (o) => {
      const inbound = port('--inbound', o.inbound);
      const outbound = port('--outbound', o.outbound);
      if (inbound === undefined && outbound === undefined) throw new CliError('give --inbound, --outbound or both');
      if (!['plain', 'json'].includes(o.logFormat)) throw new CliError(`--log-format: unknown format "${o.logFormat}" (plain or json)`);
      const uid = id('--uid', o.uid);
      const gid = id('--gid', o.gid);
      const inboundSource = sources(o.inboundSource);
      const { startProxy } = await import('../kernel/proxy');
      const json = o.logFormat === 'json';
      const log = (e: Record<string, unknown>) =>
        process.stdout.write(json ? JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n' : Object.entries(e).map(([k, v]) => `${k}=${v}`).join(' ') + '\n');
      try {
        const p = await startProxy({ inbound, outbound, uid, gid, inboundSource, log });
        const stop = () => {
          p.close();
          process.exit(0);
        };
        process.on('SIGTERM', stop).on('SIGINT', stop);
        await new Promise(() => {});
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EPERM') throw new CliError(`proxy: ${err.message}`, 1);
        throw e;
      }
    });
}
