/**
 * What each way of reading flagsvc flags in React adds to an app's bundle: @flagsvc/react
 * beside the stock OpenFeature React SDK + OFREP web provider (the peer), each built by
 * Vite (one module keeping its exports) with react and react-dom left out (the app ships those anyway),
 * minified, then gzipped. Run after `npm run build`: `node bench/size.mjs`.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from 'vite';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entries = {
  '@flagsvc/react': `export { FlagsvcProvider, useFlag, useFlagDetails, Flag } from ${JSON.stringify(join(packageRoot, 'dist/index.js'))};`,
  '@openfeature/react-sdk + ofrep-web-provider': [
    "export { OpenFeature, OpenFeatureProvider, useBooleanFlagValue, useFlag } from '@openfeature/react-sdk';",
    "export { OFREPWebProvider } from '@openfeature/ofrep-web-provider';",
  ].join('\n'),
};

const work = mkdtempSync(join(packageRoot, '.size-'));
const rows = [];
try {
  for (const [name, source] of Object.entries(entries)) {
    const entry = join(work, `${rows.length}.js`);
    writeFileSync(entry, source);
    const outDir = join(work, `out-${rows.length}`);
    await build({
      configFile: false,
      logLevel: 'silent',
      root: packageRoot,
      build: {
        outDir,
        minify: true,
        // An app build of one module that keeps its exports (library mode would keep whitespace).
        rollupOptions: {
          input: entry,
          preserveEntrySignatures: 'strict',
          external: ['react', 'react-dom', 'react/jsx-runtime'],
          output: { format: 'es', entryFileNames: 'bundle.js' },
        },
      },
    });
    const file = readdirSync(outDir).find((f) => f.endsWith('.js'));
    const code = readFileSync(join(outDir, file));
    rows.push([name, code.length, gzipSync(code, { level: 9 }).length]);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const table = [['client (react and react-dom excluded)', 'minified', 'gzip'], ...rows.map(([n, m, g]) => [n, kb(m), kb(g)])];
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
console.log('bundle size added to a React app');
for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
console.log(`ratio (OpenFeature / @flagsvc/react, gzip): ${(rows[1][2] / rows[0][2]).toFixed(1)}x`);
