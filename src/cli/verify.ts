/** `podtables verify linkerd`: compare the live chains with what the flags produce; exit 1 on drift. */
import type { Command } from 'commander';
import { CliError } from './io';
import { addCommonFlags, addRuleFlags, checkCommon, kernelErrors, linkerdOptions, meshCommand, resolveTarget } from './init';

/** Register `verify linkerd`. */
export function register(program: Command): void {
  const verify = meshCommand(program, 'verify', 'check that the live rules are exactly what `init` would install');
  const linkerd = verify.command('linkerd').description('report missing, extra and reordered rules in the proxy-init chains (exit 1 on drift)');
  addRuleFlags(linkerd);
  addCommonFlags(linkerd);
  linkerd.action(async (o) => {
    const { logger, families, mode } = checkCommon(o);
    const { options } = await linkerdOptions(o);
    const { linkerdPlan } = await import('../mesh/linkerd');
    const { verifyOwnedChains } = await import('../kernel/apply');
    let drift = 0;
    await kernelErrors(async () => {
      for (const family of families) {
        const target = await resolveTarget(o, mode, family, logger);
        const found = await verifyOwnedChains(target, linkerdPlan(options, family));
        for (const d of found) logger.log('warn', `${d.kind.replace('-', ' ')}: ${d.rule ?? d.chain}`, { family, chain: d.chain });
        if (!found.length) logger.log('info', 'nat table matches the flags', { family });
        drift += found.length;
      }
    });
    if (drift) throw new CliError(`drift: ${drift} difference${drift === 1 ? '' : 's'} from the wanted rules`, 1);
  });
}
