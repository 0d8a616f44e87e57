/** `podtables clean linkerd`: remove exactly the chains and jumps `init linkerd` added, in one transaction per family. */
import type { Command } from 'commander';
import { addCommonFlags, checkCommon, kernelErrors, meshCommand, resolveTarget } from './init';

/** Register `clean linkerd`. */
export function register(program: Command): void {
  const clean = meshCommand(program, 'clean', 'remove what `init` installed, and nothing else');
  const linkerd = clean.command('linkerd').description('remove PROXY_INIT_REDIRECT, PROXY_INIT_OUTPUT and the jumps into them');
  addCommonFlags(linkerd);
  linkerd
    .option('--simulate', 'print the iptables-restore input that would be applied; change nothing')
    .action(async (o) => {
      const { logger, families, mode } = checkCommon(o);
      const { REDIRECT_CHAIN, OUTPUT_CHAIN } = await import('../mesh/linkerd');
      const { readTable, readTableText, planRemove, removeOwnedChains } = await import('../kernel/apply');
      const chains = [REDIRECT_CHAIN, OUTPUT_CHAIN];
      await kernelErrors(async () => {
        for (const family of families) {
          const target = await resolveTarget(o, mode, family, logger);
          if (o.simulate) {
            const live = await readTable(target, 'nat');
            const p = planRemove(live.table, 'nat', chains, family);
            logger.log('info', p.text ? `would run ${target.bins.restore} --noflush with:` : 'nothing to remove', { family });
            if (p.text) process.stdout.write(p.text);
            continue;
          }
          const res = await removeOwnedChains(target, 'nat', chains);
          for (const a of res.actions) logger.log('info', a, { family });
          if (!res.changed) logger.log('info', 'nothing to remove', { family });
          logger.table(family, target.bins.save, await readTableText(target, 'nat'));
        }
      });
    });
}
