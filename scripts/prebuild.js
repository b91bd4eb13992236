#!/usr/bin/env node
// npm run prebuild — prebuildify (N-API, stripped) through binding.gyp: writes
// prebuilds/<platform>-<arch>/quantmoe.node, a CPU-backend binary that node-gyp-build loads when
// no local build exists. node-gyp works in build/, so the cmake-js build there is set aside and
// put back afterwards.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build');
const aside = path.join(root, 'build.cmake-aside');
if (fs.existsSync(aside)) fs.rmSync(aside, { recursive: true, force: true });
const hadBuild = fs.existsSync(build);
if (hadBuild) fs.renameSync(build, aside);
let status = 1;
try {
  const bin = require.resolve('prebuildify/bin.js');
  const r = spawnSync(process.execPath, [bin, '--napi', '--strip', '--target', `node@${process.versions.node}`], {
    cwd: root,
    stdio: 'inherit',
  });
  status = r.status ?? 1;
} finally {
  fs.rmSync(build, { recursive: true, force: true });
  if (hadBuild) fs.renameSync(aside, build);
}
if (status === 0) console.log(`prebuild: wrote prebuilds/${process.platform}-${process.arch}/`);
process.exit(status);
