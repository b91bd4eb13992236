// Finds and loads the native addon: QUANTMOE_ADDON (an explicit .node path, used by the sanitizer
// build), then node-gyp-build's search (build/Release first, then prebuilds/<platform>-<arch>/).
// Kept in plain JS so the install script can use it before TypeScript is compiled.
'use strict';
const path = require('path');

const root = path.resolve(__dirname, '..');

function load() {
  const tried = [];
  const explicit = process.env.QUANTMOE_ADDON;
  if (explicit) {
    try {
      return require(path.resolve(explicit));
    } catch (e) {
      const err = new Error(
        `quantmoe: QUANTMOE_ADDON=${explicit} could not be loaded (${e && e.message}). ` +
          'Fix: point QUANTMOE_ADDON at a built quantmoe.node, or unset it to use build/Release or prebuilds/.',
      );
      err.code = 'E_LOAD';
      throw err;
    }
  }
  try {
    return require('node-gyp-build')(root);
  } catch (e) {
    tried.push(path.join(root, 'build', 'Release', '*.node'));
    tried.push(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, '*.node'));
    const err = new Error(
      `quantmoe: no native binary for ${process.platform}-${process.arch} (node ${process.versions.node}, ` +
        `N-API ${process.versions.napi}). Tried: ${tried.join(', ')}. ` +
        `Fix: run \`npm rebuild quantmoe\` (needs cmake or node-gyp and a C++17 compiler), ` +
        `or set QUANTMOE_ADDON to a built quantmoe.node. Cause: ${e && e.message}`,
    );
    err.code = 'E_LOAD';
    throw err;
  }
}

module.exports = { load, root };
