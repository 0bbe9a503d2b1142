// The module graph is fetched in parallel: web/index.html preloads (`modulepreload`) every
// module main.js reaches, and nothing else. Run with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web');

/** Every module reachable from `entry` by static imports, as paths relative to web/. */
function reachable(entry) {
  const seen = new Set();
  const visit = (rel) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const source = readFileSync(path.join(web, rel), 'utf8');
    for (const m of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'/gm)) {
      visit(path.posix.join(path.posix.dirname(rel), m[1] ?? m[2]));
    }
  };
  visit(entry);
  return seen;
}

test('index.html preloads exactly the modules main.js reaches', () => {
  const html = readFileSync(path.join(web, 'index.html'), 'utf8');
  const preloaded = new Set([...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]));
  const modules = reachable('js/main.js');
  modules.delete('js/main.js');
  assert.deepEqual([...preloaded].sort(), [...modules].sort());
});
