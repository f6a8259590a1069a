// `down`: an environment taken off the VM. Monitoring lets go of it first, so stopping it pages
// no one; then its app containers stop (SIGTERM: requests in flight finish) and its proxy and
// project network go. Its directory (settings, history) and images stay: a deploy brings it back.
import { listAppContainers, removeContainers, stopContainer } from './commands/app.js';
import { downProject } from './commands/compose.js';
import { exists, removeFiles } from './commands/files.js';
import type { DeployConfig } from './config.js';
import type { EnvName } from './environments.js';
import { unregisterTargets } from './flow/targets.js';
import { STOP_GRACE_S, TIMEOUT_MS } from './limits.js';
import { acquire } from './lock.js';
import { envPaths } from './paths.js';
import type { Reporter } from './report.js';
import type { Executor } from './ssh.js';

export async function tearDown(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
  report: Reporter,
): Promise<void> {
  const paths = envPaths(cfg.remoteDir, env);
  const must = async (cmd: Parameters<Executor['run']>[0], what: string, timeoutMs?: number) => {
    const res = await exec.run(cmd, { timeoutMs: timeoutMs ?? TIMEOUT_MS.command });
    if (res.code !== 0)
      throw new Error(`${what}: ${res.stderr.trim().split('\n').at(-1) || `exit ${res.code}`}`);
    return res.stdout;
  };
  const lock = await report.step('lock', () =>
    acquire(exec, paths.lock, cfg.who, 'down', cfg.lockWaitS),
  );
  try {
    await report.step(
      'monitoring targets',
      () => unregisterTargets(exec, cfg, env),
      (s) => s,
    );
    await report.step(
      'stop app containers',
      async () => {
        const rows = (await must(listAppContainers(env), 'cannot list containers'))
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' '));
        for (const [name, state] of rows)
          if (name && state === 'running')
            await must(stopContainer(name), `cannot stop ${name}`, (STOP_GRACE_S + 30) * 1000);
        const names = rows.map(([name]) => name ?? '').filter(Boolean);
        if (names.length > 0) await must(removeContainers(names), 'cannot remove containers');
        return names.length ? names.join(', ') : 'none';
      },
      (s) => s,
    );
    await report.step('remove proxy', async () => {
      const deployed = await exec.run(exists(paths.compose), { timeoutMs: TIMEOUT_MS.quick });
      if (deployed.code === 0)
        await must(
          downProject(env, paths.dir, { BERTH_NETWORK: cfg.network }),
          'docker compose could not remove the proxy',
          TIMEOUT_MS.compose,
        );
      // Nothing serves: status and the next deploy must not look for the removed container.
      await must(removeFiles(paths.state, paths.upstream), 'cannot clear the state files');
    });
  } finally {
    await lock.release(exec);
  }
}
