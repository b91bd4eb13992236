// Worker-thread entry of the engine: receives requests, runs scheduler steps, yields to its own
// event loop between steps so aborts and new requests are seen promptly.
import { parentPort } from 'worker_threads';

import { Engine } from './engine';
import type { FromWorker, ToWorker } from './protocol';

const port = parentPort!;
const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
const engine = new Engine(post);
let looping = false;

const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

async function loop(): Promise<void> {
  if (looping) return;
  looping = true;
  try {
    while (engine.step()) await yieldToEvents();
  } finally {
    looping = false;
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'load':
      engine.load(m.path, m.options).then(
        (info) => post({ t: 'loaded', info }),
        (e: { code?: string; message?: string }) => post({ t: 'load-error', code: e.code ?? 'E_INTERNAL', message: e.message ?? String(e) }),
      );
      return;
    case 'submit':
    case 'logits':
      try {
        if (m.t === 'submit') engine.submit(m);
        else engine.submitLogits(m.id, m.tokens);
      } catch (e) {
        const err = e as { code?: string; message?: string };
        post({ t: 'error', id: m.id, code: err.code ?? 'E_INTERNAL', message: err.message ?? String(e) });
        return;
      }
      void loop();
      return;
    case 'abort':
      engine.abort(m.id);
      return;
    case 'stats':
      post({ t: 'stats', id: m.id, counts: engine.stats(m.reset) });
      return;
    case 'dispose':
      engine.dispose();
      post({ t: 'disposed' });
      return;
  }
});
