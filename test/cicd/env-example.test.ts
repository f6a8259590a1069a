// .env.example is the one list of settings: every variable the service, the compose files, the
// deploy tool, init_setup.sh and the monitoring configs read must be in it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/real-tools.js';
import {
  duplicatesIn,
  listedIn,
  scanCode,
  scanConfig,
  scanProduct,
  scanShell,
} from './env-scan.js';
import { loadWorkflow, workflowFiles } from './workflows.js';

// Set by the machine, the shell, sudo or the CI runner, never by the operator.
const AMBIENT = new Set([
  'PATH',
  'HOME',
  'USER',
  'SHELL',
  'TERM',
  'TMPDIR',
  'PWD',
  'CI',
  'SUDO_USER',
  'DEBIAN_FRONTEND',
  'NODE_ENV',
  'GITHUB_STEP_SUMMARY',
  'GITHUB_OUTPUT',
  'GITHUB_ACTOR',
  'GITHUB_SHA',
  'GITHUB_REF_NAME',
  'GITHUB_RUN_ID',
  'GITHUB_REPOSITORY',
  'GITHUB_SERVER_URL',
  'GITHUB_WORKFLOW',
  'GITHUB_ACTIONS',
  'RUNNER_TEMP',
  // Set by compose itself from `-p`: the db volume's and alias's name follow the project.
  'COMPOSE_PROJECT_NAME',
]);

// Fields of /etc/os-release, which init_setup.sh sources in a subshell: not the environment.
const OS_RELEASE = new Set(['ID', 'VERSION_ID', 'PRETTY_NAME', 'VERSION_CODENAME']);

// What a workflow step hands its script (e.g. BEFORE for gitops-publish.sh) is wiring, not a
// setting. Secrets among them (VM_HOST, ...) are listed in .env.example's deploy section anyway.
const SET_BY_WORKFLOWS = new Set(
  workflowFiles().flatMap((f) =>
    Object.values(loadWorkflow(f).jobs).flatMap((job) =>
      (job.steps ?? []).flatMap((step) => Object.keys(step.env ?? {})),
    ),
  ),
);

const example = readFileSync(path.join(repoRoot, '.env.example'), 'utf8');

describe('the scanner finds reads of each kind', () => {
  it('in code', () => {
    const code = [
      "const a = process.env.ALPHA ?? 'x';",
      "const b = process.env['BRAVO'];",
      'const { CHARLIE, DELTA: d } = process.env;',
      'function f(env: NodeJS.ProcessEnv) { return env.ECHO ?? env["FOXTROT"]; }',
      'const schema = z.object({',
      '  GOLF: integer(1, 2).default(1),',
      "  HOTEL: z.string().default('h'),",
      '});',
      '  JULIET: z',
      '    .string(),',
      'const notEnv = { INDIA: 1 };',
    ].join('\n');
    expect(
      scanCode(code)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['ALPHA', 'BRAVO', 'CHARLIE', 'DELTA', 'ECHO', 'FOXTROT', 'GOLF', 'HOTEL', 'JULIET']);
    // The deploy config's shape: a plain env record validated by a schema.
    expect(
      scanCode(
        'function load(env: Record<string, string | undefined>) {}\nconst s = z.object({\n  KILO: seconds(60),\n});',
      ).map((r) => r.name),
    ).toEqual(['KILO']);
    expect(scanCode('const x = { INDIA: z.string() };')).toEqual([]);
  });

  it('in shell', () => {
    const sh =
      'a="${ALPHA:-1}"\nb="${BRAVO-2}"\n: "${CHARLIE:?set it}"\nlocal d="$DELTA" e="${ECHO}"\n';
    expect(scanShell(sh).map((r) => r.name)).toEqual(['ALPHA', 'BRAVO', 'CHARLIE']);
  });

  it('in compose and config files, skipping $$ escapes and comments', () => {
    const yml =
      'image: ${ALPHA:-x}:${BRAVO}\ncommand: echo $${NOT_ME}\n# ${NOR_ME}\nurl: ${CHARLIE:?why}\npassword: $__env{DELTA}\n';
    expect(scanConfig(yml).map((r) => r.name)).toEqual(['ALPHA', 'BRAVO', 'CHARLIE', 'DELTA']);
  });

  it('reads .env.example set and commented-out names, and duplicates', () => {
    expect([...listedIn('A=1\n# B=2\n# a comment: C is not listed\nD=\n')].sort()).toEqual([
      'A',
      'B',
      'D',
    ]);
    expect(duplicatesIn('A=1\nB=2\nA=3\n# B=4\n')).toEqual(['A']);
  });
});

describe('.env.example', () => {
  const reads = scanProduct(repoRoot).filter(
    (r) => !AMBIENT.has(r.name) && !OS_RELEASE.has(r.name) && !SET_BY_WORKFLOWS.has(r.name),
  );

  it('the scan sees the real project (service, compose, init_setup.sh)', () => {
    const names = new Set(reads.map((r) => r.name));
    for (const known of ['PORT', 'LOG_LEVEL', 'CI_PUBLIC_KEY', 'REGISTRY_TOKEN'])
      expect(names).toContain(known);
  });

  it('lists every variable the project reads', () => {
    const listed = listedIn(example);
    const missing = new Map<string, string>();
    for (const r of reads)
      if (!listed.has(r.name) && !missing.has(r.name))
        missing.set(r.name, `${r.name} (${r.file}:${r.line})`);
    expect([...missing.values()]).toEqual([]);
  });

  it('sets each variable once', () => {
    expect(duplicatesIn(example)).toEqual([]);
  });

  it("keeps its sections, which init_setup.sh copies into the VM's .env files", () => {
    const sections = [...example.matchAll(/^# --- section:([a-z-]+)/gm)].map((m) => m[1]);
    expect(sections).toEqual(['service', 'image', 'deploy', 'monitoring', 'edge', 'setup']);
    for (const s of sections) expect(example).toContain(`# --- /section:${s} ---`);
  });

  it('holds no secret values: every password, token or key is empty or a placeholder', () => {
    for (const m of example.matchAll(
      /^([A-Z0-9_]*(PASSWORD|TOKEN|SECRET|KEY|WEBHOOK_URL))=(.*)$/gm,
    )) {
      expect(m[3], `${m[1]} must be empty in .env.example`).toBe('');
    }
  });
});
