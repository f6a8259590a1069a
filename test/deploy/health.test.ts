// Health verdicts from the probe run on the proxy's side (remote/http-probe.sh) and docker inspect.
import { describe, expect, it } from 'vitest';
import { judgeHealth, parseContainerState } from '../../src/deploy/health.js';

describe('health verdicts', () => {
  const o = { path: '/health', timeoutS: 20, successes: 2 };
  const running = parseContainerState(
    'running\t0\t0\t2026-01-01T00:00:00Z\tsha256:1\tsha256:d\tr/b:v1\tberth-staging_default=172.19.0.4 berth=172.18.0.7 ',
  );
  it('reads docker inspect', () => {
    expect(running).toEqual({
      status: 'running',
      exitCode: 0,
      restarts: 0,
      startedAt: '2026-01-01T00:00:00Z',
      imageId: 'sha256:1',
      digest: 'sha256:d',
      image: 'r/b:v1',
      addresses: { 'berth-staging_default': '172.19.0.4', berth: '172.18.0.7' },
    });
    expect(parseContainerState('running\t0\t0\t\tsha256:1\t<no value>\t<no value>')?.digest).toBe(
      '',
    );
  });
  it('passes only on exit 0', () => {
    expect(
      judgeHealth(
        { code: 0, stdout: 'healthy: 2 answers in a row, last HTTP 200\n', stderr: '' },
        running,
        o,
      ).healthy,
    ).toBe(true);
  });
  it('says which path and what it last answered', () => {
    expect(
      judgeHealth({ code: 1, stdout: 'unhealthy: last answer HTTP 500\n', stderr: '' }, running, o)
        .reason,
    ).toBe(
      'the new container did not pass the health check: GET /health was not 2xx 2 time(s) in a row within 20 s (last answer HTTP 500)',
    );
  });
  it('calls a restarting or exited container a crash', () => {
    expect(
      judgeHealth({ code: 137, stdout: '', stderr: '' }, { ...running!, restarts: 3 }, o).reason,
    ).toMatch(/kept crashing .*restarted 3/);
    expect(
      judgeHealth(
        { code: 125, stdout: '', stderr: '' },
        { ...running!, status: 'exited', exitCode: 3 },
        o,
      ).reason,
    ).toMatch(/exited with code 3/);
    expect(judgeHealth({ code: 125, stdout: '', stderr: '' }, undefined, o).reason).toMatch(
      /disappeared/,
    );
  });
  it('tells a probe that could not run from an unhealthy app, naming what to fix', () => {
    expect(
      judgeHealth(
        { code: 127, stdout: '', stderr: 'http-probe: no wget in the proxy image\n' },
        running,
        o,
      ).reason,
    ).toMatch(/proxy image cannot run the health probe .*PROXY_IMAGE.*no wget in the proxy image$/);
    // docker's own exit 1 (e.g. the proxy stopped under the exec) is not an answer of the app.
    const r = judgeHealth(
      { code: 1, stdout: '', stderr: 'Error response from daemon: container abc is not running\n' },
      running,
      o,
    );
    expect(r.healthy).toBe(false);
    expect(r.reason).toBe(
      'the health probe could not run (exit 1: Error response from daemon: container abc is not running)',
    );
  });
});
