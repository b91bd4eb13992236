// Prometheus metrics in the text exposition format (version 0.0.4), written by hand: request
// counts by endpoint and status, tokens, a sliding-window token rate, queue depth, in-flight
// requests, time to first token and request duration histograms, and the expert load per layer
// that the model reports (model.stats()).
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds of history behind quantmoe_tokens_per_second. */
export const RATE_WINDOW_S = 10;

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
    this.sum += v;
    this.count++;
  }

  render(name: string, help: string, out: string[]): void {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    this.buckets.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`));
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export interface Gauges {
  inFlight: number;
  waiting: number;
  running: number;
  maxQueue: number;
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private generatedTokens = 0;
  /** Tokens generated per whole second (epoch seconds → count), for the sliding-window rate. */
  private readonly perSecond = new Map<number, number>();
  private readonly ttft = new Histogram(TTFT_BUCKETS);
  private readonly duration = new Histogram(DURATION_BUCKETS);
  private readonly startedAt = Date.now();

  constructor(private readonly modelName: string) {}

  request(endpoint: string, status: number): void {
    const key = `${endpoint}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  tokens(n: number): void {
    if (n <= 0) return;
    this.generatedTokens += n;
    const s = Math.floor(Date.now() / 1000);
    this.perSecond.set(s, (this.perSecond.get(s) ?? 0) + n);
    if (this.perSecond.size > 2 * RATE_WINDOW_S) this.prune(s);
  }

  prompt(n: number): void {
    this.promptTokens += n;
  }

  firstToken(seconds: number): void {
    this.ttft.observe(seconds);
  }

  finished(seconds: number): void {
    this.duration.observe(seconds);
  }

  /** Tokens per second over the last RATE_WINDOW_S seconds (or since start, if sooner). */
  tokensPerSecond(now = Date.now()): number {
    const s = Math.floor(now / 1000);
    this.prune(s);
    let n = 0;
    for (const [t, c] of this.perSecond) if (t > s - RATE_WINDOW_S) n += c;
    const span = Math.min(RATE_WINDOW_S, Math.max(1, (now - this.startedAt) / 1000));
    return n / span;
  }

  private prune(s: number): void {
    for (const t of this.perSecond.keys()) if (t <= s - RATE_WINDOW_S) this.perSecond.delete(t);
  }

  render(g: Gauges, expertCounts?: number[][]): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    const model = `model="${escapeLabel(this.modelName)}"`;
    metric('quantmoe_model_info', 'gauge', 'The model this server serves.', [`quantmoe_model_info{${model}} 1`]);
    metric('quantmoe_requests_total', 'counter', 'HTTP requests by endpoint and status (499: the client closed the connection first).',
      [...this.requests].map(([k, v]) => {
        const [endpoint, status] = k.split('\u0000');
        return `quantmoe_requests_total{endpoint="${escapeLabel(endpoint)}",status="${status}"} ${v}`;
      }));
    metric('quantmoe_prompt_tokens_total', 'counter', 'Prompt tokens of finished requests.', [`quantmoe_prompt_tokens_total ${this.promptTokens}`]);
    metric('quantmoe_tokens_generated_total', 'counter', 'Tokens generated.', [`quantmoe_tokens_generated_total ${this.generatedTokens}`]);
    metric('quantmoe_tokens_per_second', 'gauge', `Tokens generated per second over the last ${RATE_WINDOW_S} s.`,
      [`quantmoe_tokens_per_second ${round(this.tokensPerSecond())}`]);
    metric('quantmoe_requests_in_flight', 'gauge', 'Generation requests admitted and not finished (waiting or running).', [`quantmoe_requests_in_flight ${g.inFlight}`]);
    metric('quantmoe_queue_depth', 'gauge', 'Admitted generation requests still waiting for their first token.', [`quantmoe_queue_depth ${g.waiting}`]);
    metric('quantmoe_requests_running', 'gauge', 'Generation requests producing tokens.', [`quantmoe_requests_running ${g.running}`]);
    metric('quantmoe_max_queue', 'gauge', 'Requests admitted at most before answering 429.', [`quantmoe_max_queue ${g.maxQueue}`]);
    this.ttft.render('quantmoe_time_to_first_token_seconds', 'Seconds from admission to the first generated token.', out);
    this.duration.render('quantmoe_request_duration_seconds', 'Seconds from admission to the last generated token.', out);
    if (expertCounts && expertCounts.some((l) => l.length > 0)) {
      const lines: string[] = [];
      const imbalance: string[] = [];
      expertCounts.forEach((layer, l) => {
        if (layer.length === 0) return; // dense layer
        layer.forEach((c, e) => lines.push(`quantmoe_expert_tokens_total{layer="${l}",expert="${e}"} ${c}`));
        const total = layer.reduce((a, b) => a + b, 0);
        const mean = total / layer.length;
        imbalance.push(`quantmoe_expert_load_imbalance{layer="${l}"} ${mean > 0 ? round(Math.max(...layer) / mean) : 0}`);
      });
      metric('quantmoe_expert_tokens_total', 'counter', 'Tokens routed to each expert in each MoE layer since the model was loaded.', lines);
      metric('quantmoe_expert_load_imbalance', 'gauge', 'Busiest expert load divided by the mean expert load, per MoE layer (1 = even).', imbalance);
    }
    return `${out.join('\n')}\n`;
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;
