import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

// The page imports the package as an app would, resolved to its built output (npm run build).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  resolve: {
    alias: { '@flagsvc/react': fileURLToPath(new URL('../dist/index.js', import.meta.url)) },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
