// Runs once before all suites, in jest's main process: says visibly when the GPU suite cannot run
// (console output of a fully skipped suite is not shown by jest).
module.exports = async () => {
  try {
    const b = require('../scripts/load-addon.js').load().backends();
    if (!(b.cuda.compiled && b.cuda.devices.length > 0)) {
      process.stdout.write(`\nskipped: no CUDA device (${b.cuda.unavailableReason || 'unknown'}): the GPU suite (test/gpu) will not run\n`);
    }
  } catch (e) {
    process.stdout.write(`\nquantmoe: the native addon did not load: ${e.message}\n`);
  }
};
