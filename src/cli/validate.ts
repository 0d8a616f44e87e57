/**
 * `podtables validate`: the init container that replaces proxy-init when the CNI plugin installs
 * the rules. It listens on the proxy's outbound port and connects to an address nobody serves;
 * only if the connection comes back to its own listener are the redirect rules in place.
 */
import type { Command } from 'commander';
import { createServer, connect, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { CliError } from './io';

/** Exit code when the rules are missing, distinct from usage errors (2). */
export const RULES_MISSING = 95;

/** Listen on `port`, connect to `target`; resolves with a reason when the redirect is not in place. */
export async function validateRedirect(port: number, target: { host: string; port: number }, timeoutMs: number): Promise<string | null> {
  const token = randomBytes(16).toString('hex');
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '::', () => resolve());
  }).catch(async () => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => resolve());
    });
  });
  try {
    return await new Promise<string | null>((resolve) => {
      const s = connect({ host: target.host, port: target.port });
      let got = '';
      const timer = setTimeout(() => {
        s.destroy();
        resolve(`no answer from ${target.host}:${target.port} within ${timeoutMs} ms: outbound traffic is not redirected to port ${port}`);
      }, timeoutMs);
      s.on('connect', () => s.write(token));
      s.on('data', (d) => {
        got += d.toString();
        if (got.length >= token.length) {
          clearTimeout(timer);
          s.destroy();
          resolve(got === token ? null : `the connection to ${target.host}:${target.port} reached a listener that is not ours`);
        }
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        resolve(`connecting to ${target.host}:${target.port} failed (${e.message}): outbound traffic is not redirected to port ${port}`);
      });
    });
  } finally {
    server.close();
    void (server.address() as AddressInfo | null);
  }
}

export function register(program: Command): void {
  program
    .command('validate')
    .description('check that the CNI plugin installed the redirect rules in this pod (exit 95 when not)')
    .option('--outbound-port <port>', "the proxy's outbound port, which the rules redirect to", '4140')
    .option('--connect-addr <host:port>', 'an address nobody serves; the rules must bring the connection back here', '1.1.1.1:20001')
    .option('--timeout <ms>', 'how long to wait', '10000')
    .action(async (o) => {
      const port = Number(o.outboundPort);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`--outbound-port: invalid port "${o.outboundPort}"`);
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(o.connectAddr);
      if (!m || Number(m[2]) > 65535) throw new CliError(`--connect-addr: expected host:port, got "${o.connectAddr}"`);
      const timeout = Number(o.timeout);
      if (!(timeout > 0)) throw new CliError(`--timeout: invalid duration "${o.timeout}"`);
      const why = await validateRedirect(port, { host: m[1], port: Number(m[2]) }, timeout);
      if (why) {
        process.stderr.write(`podtables validate: the CNI rules are missing: ${why}\n`);
        process.exitCode = RULES_MISSING;
        return;
      }
      process.stdout.write(`redirect in place: a connection to ${o.connectAddr} came back to port ${port}\n`);
    });
}
