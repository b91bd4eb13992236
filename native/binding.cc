#include "binding.h"

#include <cmath>
#include <new>

#include "threadpool.h"

namespace qm {

const char* const kInternalToken = "__quantmoe_internal__";

InstanceData* instance(Napi::Env env) {
  auto* d = env.GetInstanceData<InstanceData>();
  if (!d) {
    d = new InstanceData();
    env.SetInstanceData<InstanceData>(d);
  }
  return d;
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& msg) {
  InstanceData* d = instance(env);
  if (!d->error_factory.IsEmpty()) {
    Napi::Value v = d->error_factory.Call({Napi::String::New(env, code), Napi::String::New(env, msg)});
    if (v.IsObject()) return Napi::Error(env, v);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& fn) {
  Napi::Env env = info.Env();
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;  // already a JS error
  } catch (const Error& e) {
    throw make_error(env, e.code, e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "E_OUT_OF_MEMORY", "out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, "E_INTERNAL", std::string("internal error: ") + e.what());
  }
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor* arg_tensor(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !Tensor::IsTensor(info.Env(), info[i]))
    fail("E_ARGUMENT", std::string(what) + " must be a Tensor");
  Tensor* t = Tensor::Unwrap(info[i].As<Napi::Object>());
  if (t->disposed()) fail("E_DISPOSED", std::string(what) + " was disposed");
  return t;
}

Tensor* opt_tensor(const Napi::Object& opts, const char* key) {
  if (opts.IsEmpty() || !opts.Has(key)) return nullptr;
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (!Tensor::IsTensor(opts.Env(), v)) fail("E_ARGUMENT", std::string("option '") + key + "' must be a Tensor");
  Tensor* t = Tensor::Unwrap(v.As<Napi::Object>());
  if (t->disposed()) fail("E_DISPOSED", std::string("option '") + key + "' was disposed");
  return t;
}

Napi::Object arg_object(const Napi::CallbackInfo& info, size_t i, const char* what, bool optional) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) {
    if (optional) return Napi::Object::New(info.Env());
    fail("E_ARGUMENT", std::string(what) + " is required");
  }
  if (!info[i].IsObject()) fail("E_ARGUMENT", std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsString()) fail("E_ARGUMENT", std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) fail("E_ARGUMENT", std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

std::vector<int64_t> arg_shape(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) fail("E_ARGUMENT", std::string(what) + " must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 8) fail("E_SHAPE", std::string(what) + " has more than 8 dimensions");
  std::vector<int64_t> s;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber()) fail("E_ARGUMENT", std::string(what) + " must be an array of non-negative integers");
    double x = d.As<Napi::Number>().DoubleValue();
    if (!(x >= 0) || x != std::floor(x) || x > 9007199254740991.0)
      fail("E_SHAPE", std::string(what) + " has an invalid dimension " + std::to_string(x));
    s.push_back(static_cast<int64_t>(x));
  }
  return s;
}

DType parse_dtype(const Napi::Value& v, const char* what) {
  if (v.IsString()) {
    std::string n = v.As<Napi::String>().Utf8Value();
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const DTypeInfo* i = dtype_by_name(n)) return i->type;
    fail("E_DTYPE", std::string(what) + ": unknown dtype '" + n + "'");
  }
  if (v.IsNumber()) {
    int id = v.As<Napi::Number>().Int32Value();
    if (const DTypeInfo* i = dtype_info(static_cast<DType>(id))) return i->type;
    fail("E_DTYPE", std::string(what) + ": unknown dtype id " + std::to_string(id));
  }
  fail("E_ARGUMENT", std::string(what) + " must be a dtype name such as 'f32' or 'q4_k'");
}

static Napi::Value opt_get(const Napi::Object& opts, const char* key) {
  if (opts.IsEmpty() || !opts.Has(key)) return Napi::Value();
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Value();
  return v;
}

int opt_int(const Napi::Object& opts, const char* key, int def, int lo, int hi) {
  Napi::Value v = opt_get(opts, key);
  if (v.IsEmpty()) return def;
  if (!v.IsNumber()) fail("E_ARGUMENT", std::string("option '") + key + "' must be a number");
  double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= lo && x <= hi) || x != std::floor(x))
    fail("E_ARGUMENT", std::string("option '") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(x));
  return static_cast<int>(x);
}

double opt_number(const Napi::Object& opts, const char* key, double def) {
  Napi::Value v = opt_get(opts, key);
  if (v.IsEmpty()) return def;
  if (!v.IsNumber()) fail("E_ARGUMENT", std::string("option '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool opt_bool(const Napi::Object& opts, const char* key, bool def) {
  Napi::Value v = opt_get(opts, key);
  if (v.IsEmpty()) return def;
  if (!v.IsBoolean()) fail("E_ARGUMENT", std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string opt_string(const Napi::Object& opts, const char* key, const std::string& def) {
  Napi::Value v = opt_get(opts, key);
  if (v.IsEmpty()) return def;
  if (!v.IsString()) fail("E_ARGUMENT", std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int opt_threads(const Napi::Object& opts) { return opt_int(opts, "threads", hardware_threads(), 1, 1024); }

void require_cpu(const Tensor* t, const char* what) {
  if (t->device() != Device::Cpu) fail("E_ARGUMENT", std::string(what) + " must be a CPU tensor");
}

void require_dtype(const Tensor* t, DType d, const char* what) {
  if (t->dtype() != d)
    fail("E_DTYPE", std::string(what) + " must be " + dtype_info(d)->name + ", got " + t->describe());
}

void require_rank(const Tensor* t, size_t rank, const char* what) {
  if (t->shape().size() != rank)
    fail("E_SHAPE", std::string(what) + " must have " + std::to_string(rank) + " dimensions, got " + t->describe());
}

Napi::Object make_output(Napi::Env env, Tensor* out, DType dtype, const std::vector<int64_t>& shape, Tensor** result) {
  if (out) {
    require_cpu(out, "out");
    if (out->dtype() != dtype || out->shape() != shape)
      fail("E_SHAPE", "out must be " + std::string(dtype_info(dtype)->name) + shape_str(shape) + ", got " + out->describe());
    *result = out;
    return out->Value();
  }
  Napi::Object obj = Tensor::New(env, dtype, shape, alloc_cpu_storage(tensor_bytes(dtype, shape), false));
  *result = Tensor::Unwrap(obj);
  return obj;
}

}  // namespace qm
