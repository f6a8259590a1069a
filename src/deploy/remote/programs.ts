// The programs under this folder as text, to send on a command's stdin. Read from beside this
// module: src/deploy/remote under tsx, dist/deploy/remote after `npm run build` (which copies
// them there, since tsc copies only what it compiles).
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type ProgramFile = 'proxy.sh' | 'http-probe.sh' | 'db-backup.sh' | 'edge-switch.sh';

const cache = new Map<ProgramFile, string>();

export function program(file: ProgramFile): string {
  let text = cache.get(file);
  if (text === undefined) {
    text = readFileSync(path.join(import.meta.dirname, file), 'utf8');
    cache.set(file, text);
  }
  return text;
}
