// Lists native sources for binding.gyp, so node-gyp compiles the same files as CMakeLists.txt
// without a second hand-kept list. Usage: node scripts/gyp-sources.js core|avx2|avx512
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const list = (dir, test) =>
  fs.readdirSync(path.join(root, dir)).filter(test).sort().map((f) => `${dir}/${f}`);
const kind = process.argv[2];
let files;
if (kind === 'core') {
  files = [
    ...list('native', (f) => f.endsWith('.cc')),
    ...list('native/ops', (f) => f.endsWith('.cc')),
    ...list('native/cpu', (f) => f.endsWith('.cc') && !/_(avx2|avx512)\.cc$/.test(f)),
    'native/cuda/cuda_stub.cc',
  ];
} else if (kind === 'avx2' || kind === 'avx512') {
  files = list('native/cpu', (f) => f.endsWith(`_${kind}.cc`));
} else {
  throw new Error('usage: gyp-sources.js core|avx2|avx512');
}
console.log(files.join(' '));
