#!/usr/bin/env node
// Bundles the extension with esbuild (dist/extension.js), and with --tests the unit tests (out/test/*.test.js),
// where `vscode` resolves to the small stub in test/support/vscode.ts.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const production = args.has('--production');

await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
});

if (args.has('--tests')) {
  const tests = fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
  fs.rmSync(path.join(root, 'out'), { recursive: true, force: true });
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: tests,
    bundle: true,
    outdir: 'out/test',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    alias: { vscode: './test/support/vscode.ts' },
    external: ['typescript'], // loaded from node_modules: it finds its lib.*.d.ts next to itself
    logLevel: 'warning',
  });
}
