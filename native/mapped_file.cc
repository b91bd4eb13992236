#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "binding.h"

namespace qm {

Napi::Function MappedFile::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "MappedFile",
                                    {
                                        InstanceAccessor<&MappedFile::GetPath>("path"),
                                        InstanceAccessor<&MappedFile::GetByteLength>("byteLength"),
                                        InstanceMethod<&MappedFile::Dispose>("dispose"),
                                        InstanceMethod<&MappedFile::Read>("read"),
                                    });
  instance(env)->mapped_file_ctor = Napi::Persistent(ctor);
  return ctor;
}

MappedFile::MappedFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedFile>(info) {
  if (info.Length() != 1 || !info[0].IsString() || info[0].As<Napi::String>().Utf8Value() != kInternalToken)
    throw make_error(info.Env(), "E_ARGUMENT", "MappedFile cannot be constructed directly; use mapFile(path)");
}

Napi::Object MappedFile::Open(Napi::Env env, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("E_IO", "cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("E_IO", "cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("E_IO", "'" + path + "' is not a regular file");
  }
  auto s = std::make_shared<Storage>();
  s->bytes = static_cast<size_t>(st.st_size);
  if (s->bytes > 0) {
    void* p = ::mmap(nullptr, s->bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("E_IO", "cannot map '" + path + "': " + std::strerror(e));
    }
    const size_t len = s->bytes;
    s->data = static_cast<uint8_t*>(p);
    s->owner = std::shared_ptr<void>(p, [len](void* q) { ::munmap(q, len); });
  }
  ::close(fd);  // the mapping stays valid
  s->owned = false;
  Napi::Object obj = instance(env)->mapped_file_ctor.New({Napi::String::New(env, kInternalToken)});
  MappedFile* m = Unwrap(obj);
  m->path_ = path;
  m->storage_ = std::move(s);
  return obj;
}

bool MappedFile::IsMappedFile(Napi::Env env, Napi::Value v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(instance(env)->mapped_file_ctor.Value());
}

std::shared_ptr<Storage> MappedFile::storage(const char* what) const {
  if (!storage_) fail("E_DISPOSED", std::string(what) + ": mapped file '" + path_ + "' was disposed");
  return storage_;
}

Napi::Value MappedFile::GetPath(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }

Napi::Value MappedFile::GetByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), storage_ ? static_cast<double>(storage_->bytes) : 0.0);
}

Napi::Value MappedFile::Dispose(const Napi::CallbackInfo& info) {
  storage_.reset();  // tensors still borrowing keep the pages mapped
  return info.Env().Undefined();
}

// read(offset, length) -> Buffer (a copy; for headers and small metadata).
Napi::Value MappedFile::Read(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = storage("read");
    double off = arg_number(info, 0, "offset"), len = arg_number(info, 1, "length");
    if (!(off >= 0) || !(len >= 0) || off + len > static_cast<double>(s->bytes))
      fail("E_FORMAT", "read(" + std::to_string(off) + ", " + std::to_string(len) + ") is outside '" + path_ + "' (" +
                           std::to_string(s->bytes) + " bytes)");
    return Napi::Buffer<uint8_t>::Copy(info.Env(), s->data + static_cast<size_t>(off), static_cast<size_t>(len));
  });
}

}  // namespace qm
