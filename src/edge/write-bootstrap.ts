// Writes edge/bootstrap.json from the builder (a unit test checks the file matches).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootstrapConfig } from './caddy.js';

const file = path.resolve(import.meta.dirname, '..', '..', 'edge', 'bootstrap.json');
writeFileSync(file, `${JSON.stringify(bootstrapConfig(), null, 2)}\n`);
console.log(`wrote ${file}`);
