// Op family 'qgemm': GGUF block types on the CPU.
//   quantize(dtype, x: f32[..., K], { threads }) -> dtype[..., K]       reference quantizer
//   dequantize(w: any supported type [..., K], { threads }) -> f32[..., K]
//   qmatmul(x: f32[T,K] | f32[K], w: [N,K], { threads, out }) -> f32[T,N] | f32[N]
//   getRows(w: [V,K], ids: i32[T] | Int32Array, { out }) -> f32[T,K]
//   quantizeActivations(wtype, x: f32[T,K] | f32[K]) -> act_type_for(wtype)[T,K] | [K]
// Every argument is validated here before a kernel touches memory.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../binding.h"
#include "../cpu/qgemm.h"
#include "../cpu/qgemm_kernels.h"
#include "../cpu/quants.h"
#include "../cpu/repack.h"
#include "../threadpool.h"
#include "dispatch.h"
#include "ops.h"

namespace qm {

namespace {

const char* dname(DType t) {
  const DTypeInfo* i = dtype_info(t);
  return i ? i->name : "?";
}

Napi::Object new_tensor(Napi::Env env, DType dtype, const std::vector<int64_t>& shape, Tensor** out) {
  Napi::Object obj = Tensor::New(env, dtype, shape, alloc_cpu_storage(tensor_bytes(dtype, shape), false));
  *out = Tensor::Unwrap(obj);
  return obj;
}

// Alignment the block structs need (uint16_t halves; float for f32 / q8_k).
void require_aligned(const Tensor* t, const char* what) {
  const size_t a = (t->dtype() == DType::F32 || t->dtype() == DType::Q8_K) ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(t->data()) % a != 0)
    fail("E_ARGUMENT", std::string(what) + ": data is not " + std::to_string(a) + "-byte aligned (" + t->describe() +
                           "); map the file at an aligned offset or copy the tensor");
}

// Rows of the last dimension: (rows, K) for a tensor of rank >= 1 whose K fits the block size.
std::pair<int64_t, int64_t> rows_of(const std::vector<int64_t>& shape, DType dtype, const char* what) {
  if (shape.empty()) fail("E_SHAPE", std::string(what) + " must have at least one dimension");
  const int64_t K = shape.back();
  if (K <= 0) fail("E_SHAPE", std::string(what) + ": the last dimension must be positive, got " + shape_str(shape));
  const DTypeInfo* i = dtype_info(dtype);
  if (K % i->block_size != 0)
    fail("E_SHAPE", std::string(what) + ": row length " + std::to_string(K) + " is not a multiple of the " + i->name +
                        " block size " + std::to_string(i->block_size) + " (shape " + shape_str(shape) + ")");
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  return {rows, K};
}

// Rows per task: a few tasks per thread, at least `min_rows`.
int64_t chunk_rows(int64_t rows, int threads, int64_t min_rows, int64_t max_rows) {
  const int64_t c = rows / (4 * std::max(1, threads));
  return std::max<int64_t>(min_rows, std::min<int64_t>(max_rows, c));
}

void run_rows(int64_t rows, int threads, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  const int64_t tasks = (rows + chunk - 1) / chunk;
  parallel_for(tasks, threads, [&](int64_t task, int) {
    const int64_t r0 = task * chunk;
    fn(r0, std::min(rows, r0 + chunk));
  });
}

// Row r of weight w (plain or r16 layout, rows of rb bytes) dequantized into dst[K].
void dequantize_weight_row(DType dt, const uint8_t* w, int64_t r, int64_t K, int64_t rb, float* dst) {
  if (!is_r16(dt)) return cpu::dequantize_row(dt, w + r * rb, dst, K);
  thread_local std::vector<uint8_t> plain;
  plain.resize(static_cast<size_t>(rb));
  cpu::unpack_r16_rows(dt, w, K, r, r + 1, plain.data());
  cpu::dequantize_row(plain_of(dt), plain.data(), dst, K);
}

// quantize(dtype, x, { threads })
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) fail("E_ARGUMENT", "quantize(dtype, x, options?): dtype is required");
  const DType dt = parse_dtype(info[0], "quantize: dtype");
  Tensor* x = arg_tensor(info, 1, "quantize: x");
  Napi::Object opts = arg_object(info, 2, "quantize: options", true);
  const int threads = opt_threads(opts);
  require_cpu(x, "quantize: x");
  require_dtype(x, DType::F32, "quantize: x");
  if (!cpu::quant_supported(dt))
    fail("E_DTYPE", std::string("quantize: unsupported target dtype ") + dname(dt) +
                        " (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_k..q6_k, q8_k)");
  auto [rows, K] = rows_of(x->shape(), dt, "quantize: x");
  const float* src = x->as<float>();
  if (is_quantized(dt)) {
    // A GGUF writer must not silently store garbage blocks.
    const int64_t n = rows * K;
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        fail("E_ARGUMENT", "quantize: x contains a non-finite value at row " + std::to_string(i / K) + ", column " +
                               std::to_string(i % K));
  }
  Tensor* y = nullptr;
  Napi::Object out = new_tensor(info.Env(), dt, x->shape(), &y);
  const int64_t rb = row_bytes(dt, K);
  uint8_t* dst = y->data();
  run_rows(rows, threads, chunk_rows(rows, threads, 1, 256), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) cpu::quantize_row_ref(dt, src + r * K, dst + r * rb, K);
  });
  return out;
}

// dequantize(w, { threads })
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Tensor* w = arg_tensor(info, 0, "dequantize: w");
  Napi::Object opts = arg_object(info, 1, "dequantize: options", true);
  const int threads = opt_threads(opts);
  require_cpu(w, "dequantize: w");
  if (!cpu::quant_supported(plain_of(w->dtype())))
    fail("E_DTYPE", std::string("dequantize: unsupported dtype ") + dname(w->dtype()));
  require_aligned(w, "dequantize: w");
  auto [rows, K] = rows_of(w->shape(), w->dtype(), "dequantize: w");
  const int64_t rb = row_bytes(w->dtype(), K);
  if (static_cast<int64_t>(w->byte_size()) < rows * rb) fail("E_SHAPE", "dequantize: w is smaller than its shape");
  Tensor* y = nullptr;
  Napi::Object out = new_tensor(info.Env(), DType::F32, w->shape(), &y);
  const uint8_t* src = w->data();
  float* dst = y->as<float>();
  const DType dt = w->dtype();
  run_rows(rows, threads, chunk_rows(rows, threads, 1, 1024), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) dequantize_weight_row(dt, src, r, K, rb, dst + r * K);
  });
  return out;
}

struct XShape {
  int64_t T, K;
  bool vec;
};

XShape check_x(const Tensor* x, const char* what) {
  require_cpu(x, what);
  require_dtype(x, DType::F32, what);
  const auto& s = x->shape();
  if (s.size() != 1 && s.size() != 2) fail("E_SHAPE", std::string(what) + " must be [K] or [T,K], got " + x->describe());
  XShape r{s.size() == 2 ? s[0] : 1, s.back(), s.size() == 1};
  if (r.K <= 0) fail("E_SHAPE", std::string(what) + ": K must be positive, got " + x->describe());
  return r;
}

// qmatmul(x, w, { threads, out })
Napi::Value Qmatmul(const Napi::CallbackInfo& info) {
  Tensor* x = arg_tensor(info, 0, "qmatmul: x");
  Tensor* w = arg_tensor(info, 1, "qmatmul: w");
  Napi::Object opts = arg_object(info, 2, "qmatmul: options", true);
  const int threads = opt_threads(opts);
  const XShape xs = check_x(x, "qmatmul: x");
  require_cpu(w, "qmatmul: w");
  if (!cpu::qgemm_supports(w->dtype())) cpu::act_type_for(w->dtype());  // E_DTYPE naming the supported types
  require_rank(w, 2, "qmatmul: w");
  require_aligned(w, "qmatmul: w");
  const int64_t N = w->shape()[0], K = xs.K, T = xs.T;
  if (w->shape()[1] != K)
    fail("E_SHAPE", "qmatmul: x " + x->describe() + " and w " + w->describe() + " disagree on K (w is [N,K])");
  const DTypeInfo* wi = dtype_info(w->dtype());
  if (K % wi->block_size != 0)
    fail("E_SHAPE", "qmatmul: K = " + std::to_string(K) + " is not a multiple of the " + wi->name + " block size " +
                        std::to_string(wi->block_size));
  const int64_t wrb = row_bytes(w->dtype(), K);
  if (static_cast<int64_t>(w->byte_size()) < N * wrb) fail("E_SHAPE", "qmatmul: w is smaller than its shape");
  const std::vector<int64_t> out_shape = xs.vec ? std::vector<int64_t>{N} : std::vector<int64_t>{T, N};
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, out_shape, &y);
  if (y == x || y == w) fail("E_ARGUMENT", "qmatmul: out must not alias an input");
  if (T == 0 || N == 0) return out;

  const DType wt = w->dtype();
  const int64_t arb = cpu::act_row_bytes(wt, K);
  auto act = alloc_cpu_storage(static_cast<size_t>(T * arb), false);
  const float* xs_ptr = x->as<float>();
  uint8_t* xq = act->data;
  run_rows(T, threads, chunk_rows(T, threads, 1, 64), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) cpu::quantize_act_row(wt, xs_ptr + t * K, xq + t * arb, K);
  });
  const void* wp = w->data();
  float* yp = y->as<float>();
  // Row chunks: a few per thread so that 2 threads stay balanced on a shared machine, in multiples of
  // the AVX2 kernels' tiles. GEMV (T < 5): 8-row tiles, up to 64 rows. GEMM: each call transposes the
  // activations once (O(T·K), ~5% of a 64-row chunk's work), so chunks of up to 128 rows.
  // (r16 weights: whole 16-row tiles of the layout, or edge tiles would be computed twice.)
  const bool gemm = T >= 5;
  const int64_t tile = gemm || is_r16(wt) ? 16 : 8;
  const int64_t chunk = (chunk_rows(N, threads, tile, gemm ? 128 : 64) + tile - 1) / tile * tile;
  run_rows(N, threads, chunk, [&](int64_t n0, int64_t n1) { cpu::qgemm_rows(wt, wp, xq, yp, T, K, N, n0, n1); });
  return out;
}

// getRows(w, ids, { out, threads })
Napi::Value GetRows(const Napi::CallbackInfo& info) {
  Tensor* w = arg_tensor(info, 0, "getRows: w");
  require_cpu(w, "getRows: w");
  if (!cpu::quant_supported(plain_of(w->dtype())))
    fail("E_DTYPE", std::string("getRows: unsupported dtype ") + dname(w->dtype()));
  require_rank(w, 2, "getRows: w");
  require_aligned(w, "getRows: w");
  const int64_t V = w->shape()[0], K = w->shape()[1];
  rows_of(w->shape(), w->dtype(), "getRows: w");
  const int64_t rb = row_bytes(w->dtype(), K);
  if (static_cast<int64_t>(w->byte_size()) < V * rb) fail("E_SHAPE", "getRows: w is smaller than its shape");

  const int32_t* ids = nullptr;
  int64_t T = 0;
  if (info.Length() > 1 && info[1].IsTypedArray()) {
    Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array) fail("E_DTYPE", "getRows: ids must be an Int32Array or an i32 Tensor");
    Napi::Int32Array a = info[1].As<Napi::Int32Array>();
    ids = a.Data();
    T = static_cast<int64_t>(a.ElementLength());
  } else {
    Tensor* it = arg_tensor(info, 1, "getRows: ids");
    require_cpu(it, "getRows: ids");
    require_dtype(it, DType::I32, "getRows: ids");
    require_rank(it, 1, "getRows: ids");
    ids = it->as<int32_t>();
    T = it->shape()[0];
  }
  Napi::Object opts = arg_object(info, 2, "getRows: options", true);
  const int threads = opt_threads(opts);
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= V)
      fail("E_TOKEN_RANGE", "getRows: id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                                " is out of range [0, " + std::to_string(V) + ")");
  // Copy the ids: the output allocation below may run JS (GC) that detaches nothing, but a copy
  // keeps the kernel independent of the JS-owned buffer.
  std::vector<int32_t> idv(ids, ids + T);
  Tensor* y = nullptr;
  Napi::Object out = make_output(info.Env(), opt_tensor(opts, "out"), DType::F32, {T, K}, &y);
  if (y == w) fail("E_ARGUMENT", "getRows: out must not alias w");
  const uint8_t* src = w->data();
  float* dst = y->as<float>();
  const DType dt = w->dtype();
  run_rows(T, threads, chunk_rows(T, threads, 1, 64), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) dequantize_weight_row(dt, src, idv[t], K, rb, dst + t * K);
  });
  return out;
}

// repackR16(w, { threads }) -> the same weights in the r16 layout (cpu/repack.h), rewritten in
// place: w is consumed (disposed) and the result borrows its memory. w: q4_0 / q8_0, rank >= 2,
// rows (the second-to-last dimension) in multiples of 16, in writable memory (an owned tensor or a
// model file copied into memory; a file mapping is read-only).
Napi::Value RepackR16(const Napi::CallbackInfo& info) {
  Tensor* w = arg_tensor(info, 0, "repackR16: w");
  Napi::Object opts = arg_object(info, 1, "repackR16: options", true);
  const int threads = opt_threads(opts);
  require_cpu(w, "repackR16: w");
  const DType dt = w->dtype();
  if (dt != DType::Q4_0 && dt != DType::Q8_0)
    fail("E_DTYPE", "repackR16: only q4_0 and q8_0 weights have an r16 layout, got " + w->describe());
  const DType packed = cpu::r16_of(dt);
  tensor_bytes(packed, w->shape());  // E_SHAPE unless rank >= 2 and rows in multiples of 16
  if (!w->storage()->writable)
    fail("E_ARGUMENT", "repackR16: " + w->describe() + " borrows a read-only file mapping (load with weights: 'memory')");
  require_aligned(w, "repackR16: w");
  const auto [rows, K] = rows_of(w->shape(), dt, "repackR16: w");
  uint8_t* data = w->data();
  const int64_t tiles = rows / cpu::kR16;
  run_rows(tiles, threads, chunk_rows(tiles, threads, 1, 64),
           [&](int64_t a, int64_t b) { cpu::pack_r16_tiles(dt, data, K, a, b); });
  Napi::Object out = Tensor::New(info.Env(), packed, w->shape(), w->storage(), w->offset());
  w->release(info.Env());
  return out;
}

// quantizeActivations(wtype, x, { threads })
Napi::Value QuantizeActivations(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) fail("E_ARGUMENT", "quantizeActivations(wtype, x): wtype is required");
  const DType wt = parse_dtype(info[0], "quantizeActivations: wtype");
  Tensor* x = arg_tensor(info, 1, "quantizeActivations: x");
  Napi::Object opts = arg_object(info, 2, "quantizeActivations: options", true);
  const int threads = opt_threads(opts);
  const XShape xs = check_x(x, "quantizeActivations: x");
  const DType at = cpu::act_type_for(wt);  // E_DTYPE for unsupported
  const DTypeInfo* wi = dtype_info(wt);
  if (xs.K % wi->block_size != 0)
    fail("E_SHAPE", "quantizeActivations: K = " + std::to_string(xs.K) + " is not a multiple of the " + wi->name +
                        " block size " + std::to_string(wi->block_size));
  Tensor* y = nullptr;
  Napi::Object out = new_tensor(info.Env(), at, x->shape(), &y);
  const int64_t arb = cpu::act_row_bytes(wt, xs.K);
  const float* src = x->as<float>();
  uint8_t* dst = y->data();
  run_rows(xs.T, threads, chunk_rows(xs.T, threads, 1, 64), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) cpu::quantize_act_row(wt, src + t * xs.K, dst + t * arb, xs.K);
  });
  return out;
}

// readSumF32(x: f32 tensor, { threads }) -> sum of all elements: a parallel memory read loop that
// benchmarks use to measure read bandwidth next to the GEMV numbers.
Napi::Value ReadSumF32(const Napi::CallbackInfo& info) {
  Tensor* x = arg_tensor(info, 0, "readSumF32: x");
  Napi::Object opts = arg_object(info, 1, "readSumF32: options", true);
  const int threads = opt_threads(opts);
  require_cpu(x, "readSumF32: x");
  require_dtype(x, DType::F32, "readSumF32: x");
  const int64_t n = x->numel();
  const int64_t chunk = int64_t{1} << 20;  // 4 MiB per task
  const int64_t tasks = (n + chunk - 1) / chunk;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(tasks, 1)), 0.0);
  const float* p = x->as<float>();
#ifdef QM_HAVE_X86_KERNELS
  auto fn = active_isa() == Isa::Scalar ? &cpu::read_sum_f32_scalar : &cpu::read_sum_f32_avx2;
#else
  auto fn = &cpu::read_sum_f32_scalar;
#endif
  parallel_for(tasks, threads, [&](int64_t t, int) {
    const int64_t i0 = t * chunk;
    part[static_cast<size_t>(t)] = fn(p + i0, std::min(chunk, n - i0));
  });
  double s = 0;
  for (double v : part) s += v;
  return Napi::Number::New(info.Env(), s);
}

// actType(wtype) -> the activation dtype name paired with a weight dtype.
Napi::Value ActType(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) fail("E_ARGUMENT", "qgemmActType(wtype): wtype is required");
  const DType wt = parse_dtype(info[0], "qgemmActType: wtype");
  return Napi::String::New(info.Env(), dname(cpu::act_type_for(wt)));
}

}  // namespace

void register_qgemm(Napi::Env env, Napi::Object exports) {
  exports.Set("quantize", Napi::Function::New<exported<Quantize>>(env, "quantize"));
  exports.Set("dequantize", Napi::Function::New<exported<Dequantize>>(env, "dequantize"));
  exports.Set("qmatmul", Napi::Function::New<exported<Qmatmul>>(env, "qmatmul"));
  exports.Set("getRows", Napi::Function::New<exported<GetRows>>(env, "getRows"));
  exports.Set("repackR16", Napi::Function::New<exported<RepackR16>>(env, "repackR16"));
  exports.Set("quantizeActivations", Napi::Function::New<exported<QuantizeActivations>>(env, "quantizeActivations"));
  exports.Set("readSumF32", Napi::Function::New<exported<ReadSumF32>>(env, "readSumF32"));
  exports.Set("qgemmActType", Napi::Function::New<exported<ActType>>(env, "qgemmActType"));
}

}  // namespace qm
