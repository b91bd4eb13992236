// Fused MoE layer (see moe.h for the pipeline and the batch-invariance argument).
#include "moe.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "../buffer_cache.h"
#include "../ops/dispatch.h"
#include "../threadpool.h"
#include "qgemm.h"

namespace qm::cpu {

namespace {

// Scratch memory reused across calls on the same JS thread (decode calls this hundreds of times per
// token; fresh allocations would page-fault every time). Never shared between concurrent calls:
// each JS thread (main or worker) has its own.
//
// Buffers come from the per-thread buffer cache, as tensors do (buffer_cache.h). After each
// call settle() gives back a buffer that is much larger than the call used (the first decode step
// after a 256-token prefill chunk returns ~40 MB) or larger than kKeepScratch; a run of same-sized
// calls (prefill chunks, decode steps) keeps its buffers.
class Buf {
 public:
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { release(); }
  uint8_t* get(size_t n) {
    used_ = std::max(used_, n);
    if (n > cap_) {
      release();
      const size_t c = buffer_bytes(n + n / 4);
      void* p = take_buffer(c, false);
      if (!p) fail("E_OUT_OF_MEMORY", "moe: could not allocate " + std::to_string(n) + " bytes of scratch memory");
      p_ = static_cast<uint8_t*>(p);
      cap_ = c;
    }
    return p_;
  }
  // End of a call: frees the buffer when it is over `keep`, or a mapping over 4x what this call used.
  void settle(size_t keep) {
    if (cap_ > keep || (is_mapped_buffer(cap_) && used_ * 4 < cap_)) release();
    used_ = 0;
  }

 private:
  void release() {
    if (p_) give_buffer(p_, cap_);
    p_ = nullptr;
    cap_ = 0;
  }
  uint8_t* p_ = nullptr;
  size_t cap_ = 0;
  size_t used_ = 0;  // the largest get() since the last settle()
};

constexpr int kActSlots = 4;  // F32, Q8_0, Q8_1, Q8_K

int act_slot(DType wtype) {
  switch (act_type_for(wtype)) {
    case DType::F32: return 0;
    case DType::Q8_0: return 1;
    case DType::Q8_1: return 2;
    case DType::Q8_K: return 3;
    default: fail("E_DTYPE", "moe: unexpected activation type");
  }
}

struct Scratch {
  Buf xq[kActSlots];  // x rows quantized per activation type, token order
  Buf xg[kActSlots];  // the same rows gathered in pair order (grouped by expert)
  Buf logits, gate, up, hq, out, shared_gate, meta;
};
thread_local Scratch tls;

constexpr size_t kScratchBudget = size_t(192) << 20;  // bytes of per-token scratch per batch
constexpr size_t kKeepScratch = size_t(256) << 20;    // larger buffers are freed after the call
constexpr double kMacCost = 0.25;                     // cost of one multiply-add, in "weight bytes"

inline size_t align64(size_t n) { return (n + 63) / 64 * 64; }

struct Job {
  const MoeFfnWeights* w;
  int64_t F, n;                // intermediate size, tokens
  const uint8_t *xg, *xu;      // n quantized activation rows for gate / up
  float *G, *U;                // [n, F]: gate, up -> h (in G)
  uint8_t* hq;                 // [n, hq_stride]: h quantized for down
  int64_t hq_stride;
  float* out;                  // [n, D]
  int shared;                  // index into a.shared, -1 for a routed expert
};

struct Task {
  int32_t job;
  int32_t kind;  // phase 2: 0 quantize h rows, 1 shared gate
  int64_t r0, r1;
};

// Splits each job's rows into chunks of similar cost (cost_row(j) per row): a few chunks per thread,
// at least 16 rows, multiples of 16 rows; jobs in `order` (heaviest first).
template <class RowsFn, class CostFn>
void plan_rows(std::vector<Task>& tasks, const std::vector<int>& order, int threads, RowsFn rows_of, CostFn cost_row) {
  tasks.clear();
  double total = 0;
  for (int j : order) total += static_cast<double>(rows_of(j)) * cost_row(j);
  const double target = threads > 1 ? total / (8.0 * threads) : 0;
  for (int j : order) {
    const int64_t rows = rows_of(j);
    int64_t chunk = rows;
    if (threads > 1) {
      chunk = static_cast<int64_t>(std::ceil(target / std::max(cost_row(j), 1e-9)));
      chunk = std::min(rows, std::max<int64_t>(16, (chunk + 15) / 16 * 16));
    }
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
    // Even split, boundaries on multiples of 16 rows.
    for (int64_t c = 0; c < n_chunks; ++c) {
      int64_t r0 = rows * c / n_chunks, r1 = rows * (c + 1) / n_chunks;
      r0 = c == 0 ? 0 : (r0 + 15) / 16 * 16;
      r1 = c + 1 == n_chunks ? rows : (r1 + 15) / 16 * 16;
      if (r1 > r0) tasks.push_back({j, 0, std::min(r0, rows), std::min(r1, rows)});
    }
  }
}

void run_tasks(const std::vector<Task>& tasks, int threads, const std::function<void(const Task&)>& fn) {
  if (tasks.empty()) return;
  parallel_for(static_cast<int64_t>(tasks.size()), threads, [&](int64_t i, int) { fn(tasks[static_cast<size_t>(i)]); });
}

// Rows [0, n) split in chunks of ~`per_task` rows over `threads`.
void run_rows(int64_t n, int threads, int64_t per_task, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t chunk = std::max<int64_t>(1, per_task);
  const int64_t tasks = (n + chunk - 1) / chunk;
  parallel_for(tasks, tasks > 1 ? threads : 1, [&](int64_t t, int) {
    const int64_t r0 = t * chunk;
    fn(r0, std::min(n, r0 + chunk));
  });
}

void run_batch(const MoeArgs& a, int64_t t0, int64_t t1) {
  Scratch& s = tls;
  const int64_t n = t1 - t0, D = a.D, E = a.E, k = a.route.k, P = n * k;
  const float* x = a.x + t0 * D;
  const int threads = a.threads;
  auto glu = QM_PICK(moe_glu);

  // 1. Activation rows, quantized once per activation type (lazily, by the first user).
  uint8_t* xq[kActSlots] = {nullptr, nullptr, nullptr, nullptr};
  int64_t xq_stride[kActSlots] = {0, 0, 0, 0};
  auto ensure_xq = [&](DType wtype) -> int {
    const int sl = act_slot(wtype);
    if (!xq[sl]) {
      const int64_t rb = act_row_bytes(wtype, D);
      uint8_t* b = s.xq[sl].get(static_cast<size_t>(n * rb));
      run_rows(n, threads, std::max<int64_t>(1, 16384 / D), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) quantize_act_row(wtype, x + r * D, b + r * rb, D);
      });
      xq[sl] = b;
      xq_stride[sl] = rb;
    }
    return sl;
  };

  // 2. Routing.
  int32_t* ids = a.ids + t0 * k;
  float* rw = a.weights + t0 * k;
  const float* logits = a.router_logits ? a.router_logits + t0 * E : nullptr;
  if (!logits) {
    const int sl = ensure_xq(a.router.type);
    float* lg = reinterpret_cast<float*>(s.logits.get(static_cast<size_t>(n * E) * sizeof(float)));
    const int64_t chunk = std::max<int64_t>(16, (E / std::max(1, 2 * threads) + 15) / 16 * 16);
    run_rows(E, threads, chunk, [&](int64_t e0, int64_t e1) {
      qgemm_rows(a.router.type, a.router.data, xq[sl], lg, n, D, E, e0, e1);
    });
    logits = lg;
  }
  route_all(a.route, logits, n, E, ids, rw, nullptr, threads);

  // 3. Group the pairs by expert (stable counting sort).
  const size_t meta_bytes = align64(sizeof(int64_t) * (E + 1)) * 2 + align64(sizeof(int32_t) * P) * 2;
  uint8_t* m = s.meta.get(meta_bytes);
  int64_t* offs = reinterpret_cast<int64_t*>(m);
  int64_t* fill = reinterpret_cast<int64_t*>(m + align64(sizeof(int64_t) * (E + 1)));
  int32_t* pos = reinterpret_cast<int32_t*>(m + 2 * align64(sizeof(int64_t) * (E + 1)));
  int32_t* pair_tok = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(pos) + align64(sizeof(int32_t) * P));
  std::fill_n(offs, E + 1, 0);
  for (int64_t p = 0; p < P; ++p) ++offs[ids[p] + 1];
  for (int64_t e = 0; e < E; ++e) {
    a.counts[e] += static_cast<int32_t>(offs[e + 1]);
    offs[e + 1] += offs[e];
  }
  std::copy_n(offs, E, fill);
  for (int64_t p = 0; p < P; ++p) {
    const int64_t q = fill[ids[p]]++;
    pos[p] = static_cast<int32_t>(q);
    pair_tok[q] = static_cast<int32_t>(p / k);
  }

  // Jobs: active routed experts, then shared experts.
  std::vector<Job> jobs;
  jobs.reserve(static_cast<size_t>(E + a.n_shared));
  bool routed_needs[kActSlots] = {false, false, false, false};
  for (int64_t e = 0; e < E; ++e) {
    const int64_t cnt = offs[e + 1] - offs[e];
    if (cnt == 0) continue;
    const MoeFfnWeights& w = a.experts[e];
    routed_needs[act_slot(w.gate.type)] = true;
    routed_needs[act_slot(w.up.type)] = true;
    jobs.push_back(Job{&w, a.F, cnt, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, -1});
  }
  const size_t n_routed_jobs = jobs.size();
  for (int64_t i = 0; i < a.n_shared; ++i)
    jobs.push_back(Job{&a.shared[i].w, a.shared[i].F, n, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                       static_cast<int>(i)});

  // Quantized activations every job needs (before any parallel phase: ensure_xq runs its own).
  for (const Job& j : jobs) {
    ensure_xq(j.w->gate.type);
    ensure_xq(j.w->up.type);
  }
  for (int64_t i = 0; i < a.n_shared; ++i)
    if (a.shared[i].gate_inp.data) ensure_xq(a.shared[i].gate_inp.type);

  // Gather the routed pairs' rows in expert order, per activation type the routed experts use.
  uint8_t* xg[kActSlots] = {nullptr, nullptr, nullptr, nullptr};
  for (int sl = 0; sl < kActSlots; ++sl) {
    if (!routed_needs[sl]) continue;
    const int64_t rb = xq_stride[sl];
    uint8_t* g = s.xg[sl].get(static_cast<size_t>(P * rb));
    const uint8_t* src = xq[sl];
    run_rows(P, threads, std::max<int64_t>(1, 65536 / rb), [&](int64_t p0, int64_t p1) {
      for (int64_t q = p0; q < p1; ++q) std::memcpy(g + q * rb, src + static_cast<int64_t>(pair_tok[q]) * rb, rb);
    });
    xg[sl] = g;
  }

  // Buffers per job.
  size_t gsz = 0, hsz = 0, osz = 0;
  for (Job& j : jobs) {
    j.hq_stride = act_row_bytes(j.w->down.type, j.F);
    gsz += align64(sizeof(float) * j.n * j.F);
    hsz += align64(static_cast<size_t>(j.n * j.hq_stride));
    osz += align64(sizeof(float) * j.n * D);
  }
  uint8_t* gb = s.gate.get(gsz);
  uint8_t* ub = s.up.get(gsz);
  uint8_t* hb = s.hq.get(hsz);
  uint8_t* ob = s.out.get(osz);
  float* routed_out = reinterpret_cast<float*>(ob);  // routed jobs come first: pair row q at q*D
  {
    size_t go = 0, ho = 0, oo = 0;
    int64_t e_cursor = 0;
    for (size_t ji = 0; ji < jobs.size(); ++ji) {
      Job& j = jobs[ji];
      j.G = reinterpret_cast<float*>(gb + go);
      j.U = reinterpret_cast<float*>(ub + go);
      j.hq = hb + ho;
      if (ji < n_routed_jobs) {
        // routed expert: its pairs are rows [offs[e], offs[e+1]) of the gathered buffers
        while (offs[e_cursor + 1] - offs[e_cursor] == 0) ++e_cursor;
        const int64_t q0 = offs[e_cursor];
        j.xg = xg[act_slot(j.w->gate.type)] + q0 * xq_stride[act_slot(j.w->gate.type)];
        j.xu = xg[act_slot(j.w->up.type)] + q0 * xq_stride[act_slot(j.w->up.type)];
        j.out = routed_out + q0 * D;
        ++e_cursor;
        go += sizeof(float) * j.n * j.F;  // routed G/U/out packed back to back (pair order)
        oo += sizeof(float) * j.n * D;
        if (ji + 1 == n_routed_jobs) {
          go = align64(go);
          oo = align64(oo);
        }
      } else {
        j.xg = xq[act_slot(j.w->gate.type)];
        j.xu = xq[act_slot(j.w->up.type)];
        j.out = reinterpret_cast<float*>(ob + oo);
        go += align64(sizeof(float) * j.n * j.F);
        oo += align64(sizeof(float) * j.n * D);
      }
      ho += align64(static_cast<size_t>(j.n * j.hq_stride));
    }
  }

  // Heaviest jobs first so the dynamic scheduler ends balanced.
  std::vector<int> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int p, int q) { return jobs[p].n > jobs[q].n; });

  std::vector<Task> tasks;
  // 4. gate + up + activation.
  plan_rows(tasks, order, threads, [&](int j) { return jobs[j].F; },
            [&](int j) {
              const Job& J = jobs[j];
              return static_cast<double>(row_bytes(J.w->gate.type, D) + row_bytes(J.w->up.type, D)) +
                     kMacCost * 2.0 * static_cast<double>(J.n * D);
            });
  const MoeAct act = a.act;
  run_tasks(tasks, threads, [&](const Task& t) {
    const Job& J = jobs[t.job];
    qgemm_rows(J.w->gate.type, J.w->gate.data, J.xg, J.G, J.n, D, J.F, t.r0, t.r1);
    qgemm_rows(J.w->up.type, J.w->up.data, J.xu, J.U, J.n, D, J.F, t.r0, t.r1);
    for (int64_t i = 0; i < J.n; ++i) {
      float* g = J.G + i * J.F + t.r0;
      glu(act, g, J.U + i * J.F + t.r0, g, t.r1 - t.r0);
    }
  });

  // 5. Quantize h for the down projection; shared-expert gates.
  float* sgate = reinterpret_cast<float*>(s.shared_gate.get(sizeof(float) * std::max<int64_t>(1, a.n_shared * n)));
  tasks.clear();
  for (int j : order) {
    const Job& J = jobs[j];
    const int64_t per = std::max<int64_t>(1, 16384 / J.F);
    for (int64_t r = 0; r < J.n; r += per) tasks.push_back({j, 0, r, std::min(J.n, r + per)});
    if (J.shared >= 0 && a.shared[J.shared].gate_inp.data) {
      const int64_t per_g = std::max<int64_t>(1, 65536 / D);
      for (int64_t r = 0; r < J.n; r += per_g) tasks.push_back({j, 1, r, std::min(J.n, r + per_g)});
    }
  }
  run_tasks(tasks, threads, [&](const Task& t) {
    const Job& J = jobs[t.job];
    if (t.kind == 0) {
      for (int64_t i = t.r0; i < t.r1; ++i) quantize_act_row(J.w->down.type, J.G + i * J.F, J.hq + i * J.hq_stride, J.F);
    } else {
      const MoeMatrix& gi = a.shared[J.shared].gate_inp;
      const int sl = act_slot(gi.type);
      float* sg = sgate + static_cast<int64_t>(J.shared) * n;
      qgemm_rows(gi.type, gi.data, xq[sl] + t.r0 * xq_stride[sl], sg + t.r0, t.r1 - t.r0, D, 1, 0, 1);
      for (int64_t i = t.r0; i < t.r1; ++i) sg[i] = 1.0f / (1.0f + std::exp(-sg[i]));
    }
  });

  // 6. Down projection.
  plan_rows(tasks, order, threads, [&](int) { return D; },
            [&](int j) {
              const Job& J = jobs[j];
              return static_cast<double>(row_bytes(J.w->down.type, J.F)) + kMacCost * static_cast<double>(J.n * J.F);
            });
  run_tasks(tasks, threads, [&](const Task& t) {
    const Job& J = jobs[t.job];
    qgemm_rows(J.w->down.type, J.w->down.data, J.hq, J.out, J.n, J.F, D, t.r0, t.r1);
  });

  // 7. Combine in a fixed order: routed slots 0..k-1, then shared experts in order.
  std::vector<const float*> shared_out(static_cast<size_t>(a.n_shared));
  for (size_t ji = n_routed_jobs; ji < jobs.size(); ++ji) shared_out[static_cast<size_t>(jobs[ji].shared)] = jobs[ji].out;
  float* y = a.y + t0 * D;
  run_rows(n, threads, std::max<int64_t>(1, 32768 / ((k + a.n_shared) * D)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* yr = y + i * D;
      const float w0 = rw[i * k];
      const float* o0 = routed_out + static_cast<int64_t>(pos[i * k]) * D;
      for (int64_t d = 0; d < D; ++d) yr[d] = w0 * o0[d];
      for (int64_t sl = 1; sl < k; ++sl) {
        const float w = rw[i * k + sl];
        const float* o = routed_out + static_cast<int64_t>(pos[i * k + sl]) * D;
        for (int64_t d = 0; d < D; ++d) yr[d] += w * o[d];
      }
      for (int64_t si = 0; si < a.n_shared; ++si) {
        const float* o = shared_out[static_cast<size_t>(si)] + i * D;
        if (a.shared[si].gate_inp.data) {
          const float g = sgate[si * n + i];
          for (int64_t d = 0; d < D; ++d) yr[d] += g * o[d];
        } else {
          for (int64_t d = 0; d < D; ++d) yr[d] += o[d];
        }
      }
    }
  });
}

}  // namespace

void moe_glu_scalar(MoeAct act, const float* g, const float* u, float* h, int64_t n) {
  switch (act) {
    case MoeAct::Silu:
      for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      break;
    case MoeAct::Gelu:
      for (int64_t i = 0; i < n; ++i) h[i] = 0.5f * g[i] * (1.0f + std::erf(g[i] * 0.70710678118654752f)) * u[i];
      break;
    case MoeAct::GeluTanh:
      for (int64_t i = 0; i < n; ++i) {
        const float v = g[i];
        h[i] = 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v))) * u[i];
      }
      break;
  }
}

void moe_forward(const MoeArgs& a) {
  std::fill_n(a.counts, a.E, 0);
  if (a.T <= 0) return;
  // Tokens per batch: bound the per-token scratch (intermediates, outputs, gathered rows).
  const int64_t k = a.route.k;
  size_t per_token = static_cast<size_t>(k) * (sizeof(float) * (2 * a.F + a.D) + sizeof(float) * (a.F + 2 * a.D) + 64);
  for (int64_t i = 0; i < a.n_shared; ++i)
    per_token += sizeof(float) * (3 * a.shared[i].F + a.D) + 64;
  const int64_t batch = std::max<int64_t>(1, static_cast<int64_t>(kScratchBudget / per_token));
  for (int64_t t0 = 0; t0 < a.T; t0 += batch) run_batch(a, t0, std::min(a.T, t0 + batch));
  Scratch& s = tls;
  for (Buf* b : {&s.logits, &s.gate, &s.up, &s.hq, &s.out, &s.shared_gate, &s.meta}) b->settle(kKeepScratch);
  for (int i = 0; i < kActSlots; ++i) {
    s.xq[i].settle(kKeepScratch);
    s.xg[i].settle(kKeepScratch);
  }
}

}  // namespace qm::cpu
