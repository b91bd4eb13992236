// Server-Sent Events on a raw Node response: `data: <json>\n\n` per event, `data: [DONE]\n\n` at
// the end, honouring backpressure (a slow reader pauses generation rather than growing a buffer).
import type { ServerResponse } from 'http';

export class SseStream {
  constructor(private readonly res: ServerResponse) {}

  /** The client went away or the stream was ended. */
  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  open(headers: Record<string, string> = {}): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      ...headers,
    });
    this.res.flushHeaders();
  }

  /** Writes one event; resolves once the socket can take more. False when the client is gone. */
  async send(data: unknown): Promise<boolean> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Writes `data: [DONE]` and ends the response. */
  async done(): Promise<void> {
    if (await this.write('data: [DONE]\n\n')) this.res.end();
  }

  end(): void {
    if (!this.closed) this.res.end();
  }

  private async write(chunk: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.res.write(chunk)) return true;
    await new Promise<void>((resolve) => {
      const settle = () => {
        this.res.off('drain', settle);
        this.res.off('close', settle);
        resolve();
      };
      this.res.on('drain', settle);
      this.res.on('close', settle);
    });
    return !this.closed;
  }
}

/** Splits an SSE byte stream into the JSON payloads of its `data:` events (for clients and tests). */
export function parseSseEvents(text: string): { events: unknown[]; done: boolean; rest: string } {
  const events: unknown[] = [];
  let done = false;
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
    if (!data) continue;
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data));
  }
  return { events, done, rest };
}
