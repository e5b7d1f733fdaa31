import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** Finds openapi/openapi.yaml above this module (works from src/ and from dist/). */
export function openApiPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'openapi', 'openapi.yaml');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('openapi/openapi.yaml not found next to the Rampart package');
}

/** The HTTP contract as a JSON object. */
export function loadOpenApi(): unknown {
  return parse(readFileSync(openApiPath(), 'utf8'));
}
