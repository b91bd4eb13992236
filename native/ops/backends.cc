// backends(): what this binary was compiled with and what is usable now; setIsa()/isa() let tests
// exercise every CPU kernel path on one machine.
#include "../binding.h"
#include "../cpu_features.h"
#include "../cuda/cuda_backend.h"
#include "../threadpool.h"
#include "ops.h"

namespace qm {

namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object cpu = Napi::Object::New(env);
  auto names = cpu_feature_names();
  Napi::Array feats = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) feats.Set(i, Napi::String::New(env, names[i]));
  cpu.Set("features", feats);
  cpu.Set("threads", Napi::Number::New(env, hardware_threads()));
  cpu.Set("isa", Napi::String::New(env, isa_name(active_isa())));
  cpu.Set("bestIsa", Napi::String::New(env, isa_name(best_isa())));
  Napi::Array isas = Napi::Array::New(env);
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_compiled(i)) isas.Set(isas.Length(), Napi::String::New(env, isa_name(i)));
  cpu.Set("compiledIsas", isas);
#if defined(__x86_64__)
  cpu.Set("arch", Napi::String::New(env, "x64"));
#elif defined(__aarch64__)
  cpu.Set("arch", Napi::String::New(env, "arm64"));
#else
  cpu.Set("arch", Napi::String::New(env, "other"));
#endif
  out.Set("cpu", cpu);

  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", Napi::Boolean::New(env, cuda_compiled()));
  std::string why;
  auto devs = cuda_devices(&why);
  Napi::Array da = Napi::Array::New(env, devs.size());
  for (size_t i = 0; i < devs.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", Napi::String::New(env, devs[i].name));
    d.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(devs[i].memory_bytes)));
    d.Set("computeCapability", Napi::String::New(env, std::to_string(devs[i].major) + "." + std::to_string(devs[i].minor)));
    da.Set(i, d);
  }
  cuda.Set("devices", da);
  if (!why.empty()) cuda.Set("unavailableReason", Napi::String::New(env, why));
  if (cuda_compiled()) cuda.Set("runtimeVersion", Napi::Number::New(env, cuda_runtime_version()));
  out.Set("cuda", cuda);
  return out;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  std::string name = arg_string(info, 0, "isa");
  Isa isa;
  if (name == "scalar") isa = Isa::Scalar;
  else if (name == "avx2") isa = Isa::Avx2;
  else if (name == "avx512") isa = Isa::Avx512;
  else if (name == "best") isa = best_isa();
  else fail("E_ARGUMENT", "isa must be 'scalar', 'avx2', 'avx512' or 'best', got '" + name + "'");
  set_active_isa(isa);
  return Napi::String::New(info.Env(), isa_name(active_isa()));
}

// setErrorFactory((code, message) => Error): how native errors are constructed in this environment.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) fail("E_ARGUMENT", "setErrorFactory(fn) needs a function");
  instance(info.Env())->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

void register_backends(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New<exported<Backends>>(env, "backends"));
  exports.Set("setIsa", Napi::Function::New<exported<SetIsa>>(env, "setIsa"));
  exports.Set("setErrorFactory", Napi::Function::New<exported<SetErrorFactory>>(env, "setErrorFactory"));
}

}  // namespace qm
