// A model file's bytes in memory, in one of two ways:
//  - mapped (default): a read-only mapping of the file; tensors borrow the page-cache pages (weights
//    are never copied, processes share them, loading is instant);
//  - in memory: an anonymous copy on transparent huge pages (MADV_HUGEPAGE), filled by fill()
//    with parallel pread()s. Decode streams every weight once per token, and 2 MB pages read
//    15-30 % faster than the file's 4 KB pages (fewer TLB misses; the hardware prefetchers stop at
//    page boundaries): see bench/qgemm_micro.cc's cold column and the README.
// Tensors made from it borrow its memory; it lives until the handle is disposed and the last
// tensor that borrows from it is gone.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "tensor.h"

namespace qm {

class MappedFile : public Napi::ObjectWrap<MappedFile> {
 public:
  static Napi::Function Init(Napi::Env env);
  // The file mapped, or (in_memory) an anonymous copy allocated but not yet filled (see fill).
  static Napi::Object Open(Napi::Env env, const std::string& path, bool in_memory);
  static bool IsMappedFile(Napi::Env env, Napi::Value v);
  explicit MappedFile(const Napi::CallbackInfo& info);

  // Storage covering the whole file; throws E_DISPOSED after dispose().
  std::shared_ptr<Storage> storage(const char* what) const;
  const std::string& path() const { return path_; }

 private:
  Napi::Value GetPath(const Napi::CallbackInfo& info);
  Napi::Value GetByteLength(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Fill(const Napi::CallbackInfo& info);
  Napi::Value GetInMemory(const Napi::CallbackInfo& info);

  std::string path_;
  std::shared_ptr<Storage> storage_;
  bool in_memory_ = false;
};

}  // namespace qm
