// Writes dist/lib/index.mjs and index.d.mts so that `import { loadModel } from 'quantmoe'` works
// in ESM next to `require('quantmoe')`: the ESM entry re-exports the CommonJS build's names.
'use strict';
const fs = require('fs');
const path = require('path');

const dist = path.resolve(__dirname, '..', 'dist', 'lib');
const cjs = require(path.join(dist, 'index.js')); // loading it does not load the native addon
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule' && /^[A-Za-z_$][\w$]*$/.test(n));
const mjs = [
  "import cjs from './index.js';",
  ...names.map((n) => `export const ${n} = cjs.${n};`),
  'export default cjs;',
  '',
].join('\n');
fs.writeFileSync(path.join(dist, 'index.mjs'), mjs);
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './index.js';\nimport * as all from './index.js';\nexport default all;\n");
console.log(`esm-wrapper: ${names.length} names re-exported in dist/lib/index.mjs`);
