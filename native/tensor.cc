#include "tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "binding.h"
#include "buffer_cache.h"

namespace qm {

std::shared_ptr<Storage> alloc_cpu_storage(size_t bytes, bool zero) {
  auto s = std::make_shared<Storage>();
  // Through the per-thread buffer cache (buffer_cache.h says why). Buffers of 64 KB and more are
  // anonymous mappings of their own; zeroed ones (KV caches) fresh ones, whose pages the kernel
  // hands out lazily: memory is only resident once used (a 4096-token cache that holds 100 tokens
  // costs 100 tokens of RSS).
  const size_t n = bytes == 0 ? 1 : bytes;
  void* p = take_buffer(n, zero);
  if (!p) fail("E_OUT_OF_MEMORY", "could not allocate " + std::to_string(bytes) + " bytes");
  s->data = static_cast<uint8_t*>(p);
  s->bytes = bytes;
  s->device = Device::Cpu;
  s->owner = std::shared_ptr<void>(p, [n](void* q) { give_buffer(q, n); });
  s->owned = true;
  s->writable = true;
  s->anonymous_map = is_mapped_buffer(n);
  return s;
}

void zero_and_release(const Storage& s, uint8_t* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (!s.anonymous_map || b <= a) {
    std::memset(p, 0, n);
    return;
  }
  std::memset(p, 0, a - reinterpret_cast<uintptr_t>(p));
  if (::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) != 0) std::memset(reinterpret_cast<void*>(a), 0, b - a);
  std::memset(reinterpret_cast<void*>(b), 0, reinterpret_cast<uintptr_t>(p) + n - b);
}

size_t tensor_bytes(DType dtype, const std::vector<int64_t>& shape) {
  const DTypeInfo* info = dtype_info(dtype);
  if (!info) fail("E_DTYPE", "unknown dtype id " + std::to_string(static_cast<int>(dtype)));
  int64_t rows = 1;
  int64_t inner = shape.empty() ? 1 : shape.back();
  for (size_t i = 0; i + 1 < shape.size(); ++i) {
    if (shape[i] < 0) fail("E_SHAPE", "negative dimension in shape " + shape_str(shape));
    rows *= shape[i];
    if (rows > (int64_t(1) << 48)) fail("E_SHAPE", "shape " + shape_str(shape) + " is too large");
  }
  if (inner < 0) fail("E_SHAPE", "negative dimension in shape " + shape_str(shape));
  // The r16 layouts (cpu/repack.h) interleave whole 16-row tiles of each matrix.
  if (is_r16(dtype) && (shape.size() < 2 || shape[shape.size() - 2] % 16 != 0))
    fail("E_SHAPE", std::string(info->name) + " tensors need at least 2 dimensions and rows (the second-to-last) in "
                                              "multiples of 16, got " + shape_str(shape));
  int64_t rb = row_bytes(dtype, inner);
  if (rows != 0 && rb > (int64_t(1) << 50) / rows) fail("E_SHAPE", "shape " + shape_str(shape) + " is too large");
  return static_cast<size_t>(rows * rb);
}

Napi::Function Tensor::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "Tensor",
      {
          InstanceAccessor<&Tensor::GetDType>("dtype"),
          InstanceAccessor<&Tensor::GetShape>("shape"),
          InstanceAccessor<&Tensor::GetDevice>("device"),
          InstanceAccessor<&Tensor::GetByteSize>("byteSize"),
          InstanceAccessor<&Tensor::GetDisposed>("disposed"),
          InstanceAccessor<&Tensor::GetOwned>("owned"),
          InstanceMethod<&Tensor::Dispose>("dispose"),
          InstanceMethod<&Tensor::ToArrayBuffer>("toArrayBuffer"),
          InstanceMethod<&Tensor::Write>("write"),
      });
  instance(env)->tensor_ctor = Napi::Persistent(ctor);
  return ctor;
}

// The JS constructor only accepts an internal token; tensors are made by native factories.

Tensor::Tensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tensor>(info) {
  if (info.Length() != 1 || !info[0].IsString() || info[0].As<Napi::String>().Utf8Value() != kInternalToken) {
    throw make_error(info.Env(), "E_ARGUMENT",
                     "Tensor cannot be constructed directly; use tensorFromData(), tensorEmpty() or tensorFromMapped()");
  }
}

Tensor::~Tensor() {
  // Finalizer path: memory is released with the storage; external-memory accounting is settled
  // in release() when dispose() ran; after GC the isolate may be gone, so don't touch it here.
  storage_.reset();
}

Napi::Object Tensor::New(Napi::Env env, DType dtype, const std::vector<int64_t>& shape,
                         std::shared_ptr<Storage> storage, size_t offset) {
  size_t bytes = tensor_bytes(dtype, shape);
  if (!storage || offset > storage->bytes || bytes > storage->bytes - offset)
    fail("E_SHAPE", "tensor of " + std::to_string(bytes) + " bytes does not fit its storage");
  Napi::Object obj = instance(env)->tensor_ctor.New({Napi::String::New(env, kInternalToken)});
  Tensor* t = Unwrap(obj);
  t->dtype_ = dtype;
  t->shape_ = shape;
  t->storage_ = std::move(storage);
  t->offset_ = offset;
  t->bytes_ = bytes;
  if (t->storage_->owned && t->storage_->device == Device::Cpu) {
    t->external_bytes_ = static_cast<int64_t>(bytes);
    Napi::MemoryManagement::AdjustExternalMemory(env, t->external_bytes_);
  }
  return obj;
}

bool Tensor::IsTensor(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) return false;
  auto* d = instance(env);
  return v.As<Napi::Object>().InstanceOf(d->tensor_ctor.Value());
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

std::string Tensor::describe() const {
  const DTypeInfo* i = dtype_info(dtype_);
  return std::string(i ? i->name : "?") + shape_str(shape_);
}

void Tensor::release(Napi::Env env) {
  if (external_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -external_bytes_);
    external_bytes_ = 0;
  }
  storage_.reset();
}

Napi::Value Tensor::GetDType(const Napi::CallbackInfo& info) {
  const DTypeInfo* i = dtype_info(dtype_);
  return Napi::String::New(info.Env(), i ? i->name : "?");
}

Napi::Value Tensor::GetShape(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) a.Set(i, Napi::Number::New(info.Env(), static_cast<double>(shape_[i])));
  return a;
}

Napi::Value Tensor::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device() == Device::Cuda ? "cuda" : "cpu");
}

Napi::Value Tensor::GetByteSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}

Napi::Value Tensor::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }

Napi::Value Tensor::GetOwned(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), storage_ && storage_->owned);
}

Napi::Value Tensor::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value Tensor::ToArrayBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (disposed()) fail("E_DISPOSED", "tensor " + describe() + " was disposed");
    if (device() != Device::Cpu) fail("E_UNSUPPORTED", "toArrayBuffer() needs a CPU tensor");
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), bytes_);
    if (bytes_) std::memcpy(ab.Data(), data(), bytes_);
    return ab;
  });
}

// write(src: ArrayBufferView) copies exactly byteSize bytes into an owned tensor.
Napi::Value Tensor::Write(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (disposed()) fail("E_DISPOSED", "tensor " + describe() + " was disposed");
    if (!storage_->owned) fail("E_ARGUMENT", "tensor " + describe() + " borrows read-only mapped memory");
    if (info.Length() < 1 || !(info[0].IsTypedArray() || info[0].IsBuffer() || info[0].IsDataView()))
      fail("E_ARGUMENT", "write(data): data must be a TypedArray, Buffer or DataView");
    Napi::Value v = info[0];
    size_t len = 0;
    const uint8_t* src = nullptr;
    if (v.IsTypedArray()) {
      auto ta = v.As<Napi::TypedArray>();
      len = ta.ByteLength();
      src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    } else {
      auto dv = v.As<Napi::DataView>();
      len = dv.ByteLength();
      src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    }
    if (len != bytes_)
      fail("E_SHAPE", "write(): got " + std::to_string(len) + " bytes, tensor " + describe() + " has " +
                          std::to_string(bytes_));
    if (len) std::memcpy(data(), src, len);
    return info.Env().Undefined();
  });
}

}  // namespace qm
