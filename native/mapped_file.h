// A read-only memory mapping of a model file. Tensors made from it borrow its pages (weights are
// never copied through the JS heap); the mapping lives until the file handle is disposed and the
// last tensor that borrows from it is gone.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "tensor.h"

namespace qm {

class MappedFile : public Napi::ObjectWrap<MappedFile> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Open(Napi::Env env, const std::string& path);
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

  std::string path_;
  std::shared_ptr<Storage> storage_;
};

}  // namespace qm
