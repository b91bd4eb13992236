#!/usr/bin/env node
// npm install hook: builds the native addon and prints which backend it built.
//   QUANTMOE_BUILD=cuda      cmake-js, CUDA backend required
//   QUANTMOE_BUILD=cpu       cmake-js, CPU backend only
//   QUANTMOE_BUILD=gyp       node-gyp through binding.gyp (CPU backend)
//   QUANTMOE_BUILD=prebuilt  use prebuilds/<platform>-<arch>/ only, never compile
//   unset                    cmake-js (CUDA if nvcc is found), else node-gyp, else a prebuild
// QUANTMOE_CUDA_ARCHS=90 (or "80;90") limits the CUDA architectures compiled.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const mode = (process.env.QUANTMOE_BUILD || 'auto').toLowerCase();
const log = (m) => console.log(`quantmoe: ${m}`);

function run(cmd, args, extraEnv) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  return r.status === 0;
}

function haveCmake() {
  return spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
}

function cmakeJs(cuda) {
  const bin = require.resolve('cmake-js/bin/cmake-js');
  const args = [bin, 'compile', '--out', 'build', `--CDQUANTMOE_CUDA=${cuda}`];
  if (process.env.QUANTMOE_SANITIZE === '1') args.push('--CDQUANTMOE_SANITIZE=ON');
  return run(process.execPath, args);
}

function nodeGyp() {
  // npm puts its bundled node-gyp here during lifecycle scripts.
  const gyp = process.env.npm_config_node_gyp;
  if (gyp && fs.existsSync(gyp)) return run(process.execPath, [gyp, 'rebuild']);
  return run('node-gyp', ['rebuild']);
}

function prebuildPresent() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.node'));
}

function report() {
  // Load what was built/found in a child process, so a crash cannot take npm down with it.
  const r = spawnSync(process.execPath, ['-e', `
    const b = require(${JSON.stringify(path.join(root, 'scripts', 'load-addon.js'))}).load();
    const x = b.backends();
    console.log('quantmoe: backend built: cpu (' + x.cpu.isa + '; ' + x.cpu.features.join(' ') + ')' +
      (x.cuda.compiled ? ', cuda compiled in (' + (x.cuda.devices.length ? x.cuda.devices.map(d => d.name).join(', ') : 'no device usable here: ' + x.cuda.unavailableReason) + ')' : ', no cuda'));
  `], { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

function main() {
  if (mode === 'prebuilt') {
    if (!prebuildPresent()) {
      console.error(`quantmoe: QUANTMOE_BUILD=prebuilt but prebuilds/${process.platform}-${process.arch} has no binary`);
      process.exit(1);
    }
    if (!report()) process.exit(1);
    return;
  }
  let ok = false;
  if (mode === 'cuda') ok = cmakeJs('REQUIRED');
  else if (mode === 'cpu') ok = cmakeJs('OFF');
  else if (mode === 'gyp') ok = nodeGyp();
  else if (mode === 'auto') {
    if (haveCmake()) ok = cmakeJs('AUTO');
    else log('cmake not found; trying node-gyp');
    if (!ok) ok = nodeGyp();
    if (!ok && prebuildPresent()) {
      log('compiling failed; using the prebuilt binary');
      ok = true;
    }
  } else {
    console.error(`quantmoe: unknown QUANTMOE_BUILD='${mode}' (use cuda, cpu, gyp or prebuilt)`);
    process.exit(1);
  }
  if (!ok) {
    console.error('quantmoe: could not build the native addon. Install cmake (>= 3.18) and a C++17 compiler, ' +
      'or node-gyp\'s prerequisites (python3, make, g++), then run `npm rebuild quantmoe`.');
    process.exit(1);
  }
  if (!report()) process.exit(1);
}

main();
