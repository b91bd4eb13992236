// What every route shares: the model, its public name, the limits, the admission queue and the
// metrics. One context per server instance (several servers may share one model).
import type { Model } from '../runtime/model';
import type { Metrics } from './metrics';
import type { Admission } from './queue';
import type { ValidationLimits } from './validation';

export interface ServerContext {
  model: Model;
  /** The name clients pass as `model` and that /v1/models lists. */
  modelName: string;
  /** Unix seconds when the server was created (`created` of the model object). */
  created: number;
  limits: ValidationLimits;
  admission: Admission;
  metrics: Metrics;
  /** Set while the server shuts down: /health answers 503, new generations are refused. */
  closing: boolean;
}
