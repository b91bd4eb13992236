#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "binding.h"
#include "threadpool.h"

namespace qm {

Napi::Function MappedFile::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "MappedFile",
                                    {
                                        InstanceAccessor<&MappedFile::GetPath>("path"),
                                        InstanceAccessor<&MappedFile::GetByteLength>("byteLength"),
                                        InstanceMethod<&MappedFile::Dispose>("dispose"),
                                        InstanceMethod<&MappedFile::Read>("read"),
                                        InstanceMethod<&MappedFile::Fill>("fill"),
                                        InstanceAccessor<&MappedFile::GetInMemory>("inMemory"),
                                    });
  instance(env)->mapped_file_ctor = Napi::Persistent(ctor);
  return ctor;
}

MappedFile::MappedFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedFile>(info) {
  if (info.Length() != 1 || !info[0].IsString() || info[0].As<Napi::String>().Utf8Value() != kInternalToken)
    throw make_error(info.Env(), "E_ARGUMENT", "MappedFile cannot be constructed directly; use mapFile(path)");
}

namespace {

// Opens `path` for reading after checking it is a regular file; returns the descriptor and its size.
int open_regular_file(const std::string& path, size_t* bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("E_IO", "cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("E_IO", "cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("E_IO", "'" + path + "' is not a regular file");
  }
  *bytes = static_cast<size_t>(st.st_size);
  return fd;
}

// The file's pages, read-only (the mapping stays valid after fd is closed).
void map_file(int fd, const std::string& path, Storage* s) {
  void* p = ::mmap(nullptr, s->bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail("E_IO", "cannot map '" + path + "': " + std::strerror(errno));
  const size_t len = s->bytes;
  s->data = static_cast<uint8_t*>(p);
  s->owner = std::shared_ptr<void>(p, [len](void* q) { ::munmap(q, len); });
}

// Anonymous memory for a copy, rounded up to whole 2 MB pages and advised onto transparent huge
// pages (advice only: without THP the copy works on 4 KB pages); committed as fill() writes it.
void alloc_copy(const std::string& path, Storage* s) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t len = (s->bytes + kHuge - 1) / kHuge * kHuge;
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("E_OUT_OF_MEMORY", "cannot allocate " + std::to_string(s->bytes) + " bytes for '" + path + "'");
#ifdef MADV_HUGEPAGE
  ::madvise(p, len, MADV_HUGEPAGE);
#endif
  s->data = static_cast<uint8_t*>(p);
  s->owner = std::shared_ptr<void>(p, [len](void* q) { ::munmap(q, len); });
  s->writable = true;  // repackR16 rewrites weights in place
}

}  // namespace

Napi::Object MappedFile::Open(Napi::Env env, const std::string& path, bool in_memory) {
  auto s = std::make_shared<Storage>();
  const int fd = open_regular_file(path, &s->bytes);
  try {
    if (s->bytes > 0) {
      if (in_memory)
        alloc_copy(path, s.get());
      else
        map_file(fd, path, s.get());
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);  // a mapping stays valid; fill() reopens the file for a copy
  // Tensors borrow either kind read-only, like a mapping (and V8 is not told of GBs of "external"
  // memory for an in-memory copy).
  s->owned = false;
  Napi::Object obj = instance(env)->mapped_file_ctor.New({Napi::String::New(env, kInternalToken)});
  MappedFile* m = Unwrap(obj);
  m->path_ = path;
  m->storage_ = std::move(s);
  m->in_memory_ = in_memory;
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

Napi::Value MappedFile::GetInMemory(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), in_memory_); }

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

// fill(offset, length, { threads }): copies bytes [offset, offset + length) of the file into an
// in-memory handle with pread()s of 8 MB spread over the thread pool (a slice at a time, so the
// caller can report progress and honour an abort between slices). A mapped handle has nothing to fill.
Napi::Value MappedFile::Fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto s = storage("fill");
    if (!in_memory_) fail("E_ARGUMENT", "fill: '" + path_ + "' is mapped, not copied into memory");
    const double off = arg_number(info, 0, "offset"), len = arg_number(info, 1, "length");
    if (!(off >= 0) || !(len >= 0) || off != std::floor(off) || len != std::floor(len) ||
        off + len > static_cast<double>(s->bytes))
      fail("E_ARGUMENT", "fill(" + std::to_string(off) + ", " + std::to_string(len) + ") is outside '" + path_ + "' (" +
                             std::to_string(s->bytes) + " bytes)");
    const int threads = opt_threads(arg_object(info, 2, "fill: options", true));
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("E_IO", "fill: cannot open '" + path_ + "': " + std::strerror(errno));
    const size_t o0 = static_cast<size_t>(off), n = static_cast<size_t>(len);
    constexpr size_t kChunk = size_t(8) << 20;
    const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
    std::atomic<int> err{0};
    std::atomic<bool> short_read{false};
    parallel_for(chunks, threads, [&](int64_t c, int) {
      size_t pos = o0 + static_cast<size_t>(c) * kChunk;
      const size_t end = std::min(o0 + n, pos + kChunk);
      while (pos < end && err.load() == 0 && !short_read.load()) {
        const ssize_t r = ::pread(fd, s->data + pos, end - pos, static_cast<off_t>(pos));
        if (r < 0) {
          if (errno == EINTR) continue;
          err.store(errno);
        } else if (r == 0) {
          short_read.store(true);  // the file shrank since it was opened
        } else {
          pos += static_cast<size_t>(r);
        }
      }
    });
    ::close(fd);
    if (err.load() != 0) fail("E_IO", "fill: cannot read '" + path_ + "': " + std::strerror(err.load()));
    if (short_read.load()) fail("E_IO", "fill: '" + path_ + "' is shorter than when it was opened (truncated while loading?)");
    return info.Env().Undefined();
  });
}

}  // namespace qm
