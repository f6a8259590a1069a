// A stand-in for cAdvisor, which cannot run on this machine (no Docker Engine). It is NOT
// cAdvisor: it serves the exposition cAdvisor v0.49 produces with the flags in
// docker-compose.monitoring.yml: the same metric names, the labels id, image and name, the
// whitelisted compose labels as container_label_*, container_label_restartcount only after a
// restart, and a collection timestamp on every sample. The test changes its container list to
// play out a kill or a restart loop. That is enough to test prometheus.yml's relabelling,
// honor_timestamps, the container alerts and the Containers dashboard against real Prometheus.
import http from 'node:http';

export type StandinContainer = {
  id: string;
  name: string;
  image: string;
  project: string;
  service: string;
  restartCount: number;
  memoryLimitBytes: number;
};

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelsOf(c: StandinContainer, extra: Record<string, string> = {}): string {
  const labels: Record<string, string> = {
    container_label_com_docker_compose_project: c.project,
    container_label_com_docker_compose_service: c.service,
    ...(c.restartCount > 0 ? { container_label_restartcount: String(c.restartCount) } : {}),
    id: `/system.slice/docker-${c.id}.scope`,
    image: c.image,
    name: c.name,
    ...extra,
  };
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',');
}

/** The exposition text for `containers` at `nowMs`; counters grow with time like real usage. */
export function renderCadvisorMetrics(
  containers: StandinContainer[],
  nowMs: number,
  startedMs: number,
): string {
  const seconds = (nowMs - startedMs) / 1000;
  const families: [
    string,
    'counter' | 'gauge',
    (c: StandinContainer, i: number) => [Record<string, string>, number][],
  ][] = [
    ['container_last_seen', 'gauge', () => [[{}, Math.floor(nowMs / 1000)]]],
    [
      'container_cpu_usage_seconds_total',
      'counter',
      (_c, i) => [[{ cpu: 'total' }, seconds * 0.05 * (i + 1)]],
    ],
    ['container_memory_working_set_bytes', 'gauge', (_c, i) => [[{}, 50e6 * (i + 1)]]],
    ['container_spec_memory_limit_bytes', 'gauge', (c) => [[{}, c.memoryLimitBytes]]],
    [
      'container_network_receive_bytes_total',
      'counter',
      (_c, i) => [[{ interface: 'eth0' }, seconds * 1000 * (i + 1)]],
    ],
    [
      'container_network_transmit_bytes_total',
      'counter',
      (_c, i) => [[{ interface: 'eth0' }, seconds * 2000 * (i + 1)]],
    ],
    [
      'container_fs_reads_bytes_total',
      'counter',
      (_c, i) => [[{ device: '/dev/vda' }, seconds * 4096 * (i + 1)]],
    ],
    [
      'container_fs_writes_bytes_total',
      'counter',
      (_c, i) => [[{ device: '/dev/vda' }, seconds * 8192 * (i + 1)]],
    ],
  ];
  const lines: string[] = [];
  for (const [name, type, values] of families) {
    lines.push(`# HELP ${name} ${name} (stand-in)`, `# TYPE ${name} ${type}`);
    containers.forEach((c, i) => {
      for (const [extra, value] of values(c, i))
        lines.push(`${name}{${labelsOf(c, extra)}} ${value} ${nowMs}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

export function startCadvisorStandin(
  port: number,
  containers: StandinContainer[],
): Promise<http.Server> {
  const started = Date.now();
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
      .end(renderCadvisorMetrics(containers, Date.now(), started));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}
