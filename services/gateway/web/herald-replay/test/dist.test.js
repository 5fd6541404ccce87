// The committed browser build must be what `npm run build` makes of src/index.js: the Go gateway
// embeds the file without running node.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { buildFromDisk, distPath } from '../scripts/build.js';
import { VERSION } from '../src/index.js';

it('dist/herald-replay.js is up to date with src/index.js (run npm run build)', () => {
  assert.equal(readFileSync(distPath, 'utf8'), buildFromDisk());
});

it('the browser build defines the global HeraldReplay in a plain script context', () => {
  const context = vm.createContext({});
  vm.runInContext(readFileSync(distPath, 'utf8'), context, { filename: 'herald-replay.js' });
  assert.equal(typeof context.HeraldReplay.attach, 'function');
  assert.equal(typeof context.HeraldReplay.memoryStorage, 'function');
  assert.equal(context.HeraldReplay.VERSION, VERSION);
});

it('VERSION is the package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});

// The package is installed from the repository or from an `npm pack`
// tarball, never from the npm registry, where the name is not ours.
it('the package cannot be published and packs what an install needs', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(pkg.private, true);
  assert.equal(pkg.unpkg, undefined);
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
  const files = JSON.parse(out)[0].files.map((f) => f.path);
  for (const f of ['package.json', 'src/index.js', 'dist/herald-replay.js', 'index.d.ts', 'README.md']) {
    assert.ok(files.includes(f), `npm pack leaves out ${f}: ${files}`);
  }
});
