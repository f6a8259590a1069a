// What a run leaves on the VM for the next one: its settings as app.env and as the version's
// snapshot, the :stable tag, this environment's tag for the version, the `current` state file
// and a history line.
import { appendLine, writeFile } from '../commands/files.js';
import { envTag, tag } from '../commands/images.js';
import { stableRef } from '../environments.js';
import { formatEntry, type Action, type Outcome } from '../history.js';
import { timestamp } from '../time.js';
import { together, type Run, type Target } from './run.js';
import { keep } from './settings.js';

export const historyLine = (
  run: Run,
  action: Action,
  image: string,
  digest: string,
  result: Outcome,
  reason?: string,
  from?: string,
): string =>
  formatEntry({
    time: timestamp(),
    action,
    env: run.env,
    image,
    digest,
    result,
    who: run.cfg.who,
    from: from === digest ? undefined : from,
    reason,
  });

/** Records `target` (running in container `name`) as the healthy version that serves. */
export async function record(
  run: Run,
  target: Target,
  name: string,
  action: Action,
  reason?: string,
): Promise<void> {
  // First: app.env should say what serves, and :stable never names a version whose settings
  // are not kept. Then the tags and the state file at once; the history line last, only once
  // they are all there: it is what the next run believes.
  await keep(run, target);
  const state = `digest=${target.digest} image=${target.source} container=${name} since=${timestamp()}\n`;
  await together([
    run.must(tag(target.id, stableRef(run.env)), 'cannot tag :stable'),
    run.must(
      tag(target.id, envTag(run.env, target.digest)),
      'cannot tag the image for this environment',
    ),
    run.must(writeFile(run.paths.state, state), 'cannot write the current state'),
  ]);
  await run.must(
    appendLine(
      run.paths.history,
      historyLine(
        run,
        action,
        target.source,
        target.digest,
        'ok',
        reason,
        // A rollback names what it left: that version is marked and skipped by the next one.
        action === 'rollback' ? run.live?.state?.digest : undefined,
      ),
    ),
    'cannot append to the history',
  );
}
