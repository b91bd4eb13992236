// The native Tensor handle exposed to JS: dtype (GGML type id), row-major shape (outermost
// first), device, byte size; memory either owned (64-byte aligned, freed on dispose() or by the
// GC finalizer) or borrowed from a memory-mapped model file (kept mapped while any tensor uses it).
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace qm {

enum class Device { Cpu = 0, Cuda = 1 };

// A block of memory and whatever keeps it alive (an allocation, a file mapping).
struct Storage {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  Device device = Device::Cpu;
  std::shared_ptr<void> owner;  // frees / unmaps when the last user drops it
  bool owned = false;           // allocated by us (vs borrowed from a mapping)
  bool writable = false;        // our memory (an allocation or an in-memory file copy), not a file mapping
  bool anonymous_map = false;   // a private anonymous mapping of its own: pages can be given back (MADV_DONTNEED)
};

// Zeroes bytes [p, p + n) of storage s, returning the whole pages among them to the system where
// s is an anonymous mapping (they read as zeros and cost no memory until written again).
void zero_and_release(const Storage& s, uint8_t* p, size_t n);

std::shared_ptr<Storage> alloc_cpu_storage(size_t bytes, bool zero);

class Tensor : public Napi::ObjectWrap<Tensor> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Creates a JS Tensor object around storage (offset into it) with the given dtype and shape.
  static Napi::Object New(Napi::Env env, DType dtype, const std::vector<int64_t>& shape,
                          std::shared_ptr<Storage> storage, size_t offset = 0);
  static bool IsTensor(Napi::Env env, Napi::Value v);

  explicit Tensor(const Napi::CallbackInfo& info);
  ~Tensor() override;

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  Device device() const { return storage_ ? storage_->device : Device::Cpu; }
  bool disposed() const { return !storage_; }
  int64_t numel() const;
  size_t byte_size() const { return bytes_; }
  uint8_t* data() const { return storage_ ? storage_->data + offset_ : nullptr; }
  template <class T> T* as() const { return reinterpret_cast<T*>(data()); }
  std::string describe() const;  // "f32[3,4]"
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t offset() const { return offset_; }
  // Drops the storage as dispose() does (for ops that consume their input, e.g. repackR16).
  void release(Napi::Env env);

 private:
  Napi::Value GetDType(const Napi::CallbackInfo& info);
  Napi::Value GetShape(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetByteSize(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetOwned(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value ToArrayBuffer(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);

  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  size_t bytes_ = 0;
  int64_t external_bytes_ = 0;  // reported to V8 for owned memory
};

// Bytes a tensor of this dtype and shape occupies; throws E_SHAPE on a bad shape.
size_t tensor_bytes(DType dtype, const std::vector<int64_t>& shape);

}  // namespace qm
