// Tensor factories: tensorFromData (copy), tensorEmpty (zeroed), mapFile + tensorFromMapped
// (borrowed, zero-copy), and views of the bytes.
#include <cmath>
#include <cstring>

#include "../binding.h"
#include "../mapped_file.h"
#include "ops.h"

namespace qm {

namespace {

// tensorFromData(dtype, shape, data: ArrayBufferView) -> Tensor (a copy of exactly byteSize bytes)
Napi::Value TensorFromData(const Napi::CallbackInfo& info) {
  if (info.Length() < 3) fail("E_ARGUMENT", "tensorFromData(dtype, shape, data) takes 3 arguments");
  DType dt = parse_dtype(info[0], "dtype");
  std::vector<int64_t> shape = arg_shape(info[1], "shape");
  size_t bytes = tensor_bytes(dt, shape);
  Napi::Value v = info[2];
  const uint8_t* src = nullptr;
  size_t len = 0;
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    src = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
  } else if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    src = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    fail("E_ARGUMENT", "tensorFromData: data must be a TypedArray, Buffer, DataView or ArrayBuffer");
  }
  if (len != bytes)
    fail("E_SHAPE", "tensorFromData: " + std::string(dtype_info(dt)->name) + shape_str(shape) + " needs " +
                        std::to_string(bytes) + " bytes, data has " + std::to_string(len));
  auto storage = alloc_cpu_storage(bytes, false);
  if (bytes) std::memcpy(storage->data, src, bytes);
  return Tensor::New(info.Env(), dt, shape, storage);
}

// tensorEmpty(dtype, shape) -> zero-filled Tensor
Napi::Value TensorEmpty(const Napi::CallbackInfo& info) {
  if (info.Length() < 2) fail("E_ARGUMENT", "tensorEmpty(dtype, shape) takes 2 arguments");
  DType dt = parse_dtype(info[0], "dtype");
  std::vector<int64_t> shape = arg_shape(info[1], "shape");
  return Tensor::New(info.Env(), dt, shape, alloc_cpu_storage(tensor_bytes(dt, shape), true));
}

// mapFile(path, { inMemory }): a read-only mapping, or (inMemory) an anonymous copy to fill().
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  return MappedFile::Open(info.Env(), path, opt_bool(arg_object(info, 1, "mapFile: options", true), "inMemory", false));
}

// tensorFromMapped(file, offset, dtype, shape) -> Tensor borrowing the mapped bytes
Napi::Value TensorFromMapped(const Napi::CallbackInfo& info) {
  if (info.Length() < 4 || !MappedFile::IsMappedFile(info.Env(), info[0]))
    fail("E_ARGUMENT", "tensorFromMapped(file: MappedFile, offset, dtype, shape)");
  MappedFile* f = MappedFile::Unwrap(info[0].As<Napi::Object>());
  auto storage = f->storage("tensorFromMapped");
  double off = arg_number(info, 1, "offset");
  DType dt = parse_dtype(info[2], "dtype");
  std::vector<int64_t> shape = arg_shape(info[3], "shape");
  size_t bytes = tensor_bytes(dt, shape);
  if (!(off >= 0) || off != std::floor(off) || off > static_cast<double>(storage->bytes) ||
      bytes > storage->bytes - static_cast<size_t>(off))
    fail("E_FORMAT", "tensor " + std::string(dtype_info(dt)->name) + shape_str(shape) + " at offset " +
                         std::to_string(static_cast<int64_t>(off)) + " (" + std::to_string(bytes) +
                         " bytes) lies outside '" + f->path() + "' (" + std::to_string(storage->bytes) + " bytes)");
  return Tensor::New(info.Env(), dt, shape, storage, static_cast<size_t>(off));
}

}  // namespace

void register_tensor_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("Tensor", Tensor::Init(env));
  exports.Set("MappedFile", MappedFile::Init(env));
  exports.Set("tensorFromData", Napi::Function::New<exported<TensorFromData>>(env, "tensorFromData"));
  exports.Set("tensorEmpty", Napi::Function::New<exported<TensorEmpty>>(env, "tensorEmpty"));
  exports.Set("mapFile", Napi::Function::New<exported<MapFile>>(env, "mapFile"));
  exports.Set("tensorFromMapped", Napi::Function::New<exported<TensorFromMapped>>(env, "tensorFromMapped"));
}

}  // namespace qm
