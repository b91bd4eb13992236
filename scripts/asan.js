#!/usr/bin/env node
// npm run test:asan — builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into
// build-asan/ and runs the native test suites against it (LD_PRELOAD of the ASan runtime, since
// node itself is not instrumented). Any sanitizer report aborts the run with a non-zero exit.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.resolve(__dirname, '..');
const run = (cmd, args, env) => {
  console.log(`asan: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status || 1);
};

run(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--out', 'build-asan', '--debug',
  '--CDQUANTMOE_CUDA=OFF', '--CDQUANTMOE_SANITIZE=ON']);
const addon = ['Debug', 'Release'].map((d) => path.join(root, 'build-asan', d, 'quantmoe.node')).find((p) => fs.existsSync(p));
if (!addon) {
  console.error('asan: build-asan produced no quantmoe.node');
  process.exit(1);
}
const libasan = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim();
const libubsan = spawnSync('g++', ['-print-file-name=libubsan.so'], { encoding: 'utf8' }).stdout.trim();
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['test/native', 'test/kernels', 'test/attention'];
const existing = suites.filter((s) => fs.existsSync(path.join(root, s)));
run(process.execPath, [require.resolve('jest/bin/jest'), '--selectProjects', 'cpu', '--runInBand', ...existing], {
  QUANTMOE_ADDON: addon,
  LD_PRELOAD: `${libasan} ${libubsan}`,
  // node's own allocations are not instrumented: leak checking would only report those.
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
});
console.log('asan: no sanitizer reports');
