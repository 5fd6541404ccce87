// Builds dist/herald-replay.js, the browser build: src/index.js wrapped in an IIFE that exposes
// the global HeraldReplay. The Go gateway embeds the committed file, so the build stays a plain
// text transform that needs no bundler; test/dist.test.js fails when the file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const sourcePath = fileURLToPath(new URL('../src/index.js', import.meta.url));
export const distPath = fileURLToPath(new URL('../dist/herald-replay.js', import.meta.url));

const EXPORT = /^export (const|function|class) ([A-Za-z_$][\w$]*)/gm;

/**
 * @param {string} source the text of src/index.js
 * @param {string} version the package version, for the banner
 * @returns {string} the text of dist/herald-replay.js
 */
export function build(source, version) {
  const names = [];
  const body = source.replace(EXPORT, (_, kind, name) => {
    names.push(name);
    return kind + ' ' + name;
  });
  // Only top-level `export const|function|class NAME` is understood: anything else would leave
  // module syntax in a classic script.
  const leftover = body.match(/^\s*(export|import)\b.*$/m);
  if (leftover) {
    throw new Error('build: unsupported module syntax in src/index.js: ' + leftover[0].trim());
  }
  if (names.length === 0) {
    throw new Error('build: src/index.js exports nothing');
  }
  return [
    `/*! herald-replay ${version}. Browser build of src/index.js, written by \`npm run build\`. */`,
    'var HeraldReplay = (function () {',
    "'use strict';",
    '',
    body.trimEnd(),
    '',
    `return Object.freeze({ ${names.map((name) => `${name}: ${name}`).join(', ')} });`,
    '})();',
    '',
  ].join('\n');
}

export function buildFromDisk() {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'));
  return build(readFileSync(sourcePath, 'utf8'), pkg.version);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(distPath, buildFromDisk());
}
