// Detection and choice of the ISA path (see isa.h). Compiled with the baseline flags.
#include "cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace pyengine::cpu {

namespace {

// -1 until chosen.
std::atomic<int> g_active{-1};

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define PYENGINE_X86_DETECT 1
// __builtin_cpu_supports needs string literals, hence a macro rather than a table lookup.
#define PYENGINE_FEATURE(name) {name, static_cast<bool>(__builtin_cpu_supports(name))}
#endif

struct Feature {
  const char* name;
  bool present;
};

// The features each path's compiler flags (-march=x86-64-v2/v3/v4) allow the compiler to use.
// libgcc's detection also checks that the OS saves the AVX / AVX-512 register state.
std::vector<Feature> required_features(Isa isa) {
#ifdef PYENGINE_X86_DETECT
  __builtin_cpu_init();
  std::vector<Feature> f = {PYENGINE_FEATURE("sse4.2"), PYENGINE_FEATURE("popcnt")};
  if (isa == Isa::baseline) return f;
  f.insert(f.end(), {PYENGINE_FEATURE("avx"), PYENGINE_FEATURE("avx2"), PYENGINE_FEATURE("fma"),
                     PYENGINE_FEATURE("f16c"), PYENGINE_FEATURE("bmi"), PYENGINE_FEATURE("bmi2"),
                     PYENGINE_FEATURE("lzcnt")});
  if (isa == Isa::avx2) return f;
  f.insert(f.end(), {PYENGINE_FEATURE("avx512f"), PYENGINE_FEATURE("avx512bw"),
                     PYENGINE_FEATURE("avx512cd"), PYENGINE_FEATURE("avx512dq"),
                     PYENGINE_FEATURE("avx512vl")});
  return f;
#else
  (void)isa;
  return {};
#endif
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::vector<std::string> available_names() {
  std::vector<std::string> names;
  for (Isa isa : kAllIsas)
    if (isa_compiled(isa) && isa_supported(isa)) names.push_back(isa_name(isa));
  return names;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
    case Isa::avx2:
#ifdef PYENGINE_HAVE_AVX2
      return true;
#else
      return false;
#endif
    case Isa::avx512:
#ifdef PYENGINE_HAVE_AVX512
      return true;
#else
      return false;
#endif
  }
  return false;
}

std::vector<std::string> isa_missing_features(Isa isa) {
  std::vector<std::string> missing;
#ifdef PYENGINE_X86_DETECT
  for (const Feature& f : required_features(isa))
    if (!f.present) missing.push_back(f.name);
#else
  // Off x86-64 only the baseline path is ever compiled (CMake skips the others).
  if (isa != Isa::baseline) missing.push_back(std::string("x86-64 ") + isa_name(isa));
#endif
  return missing;
}

bool isa_supported(Isa isa) { return isa_missing_features(isa).empty(); }

Isa best_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (isa_compiled(isa) && isa_supported(isa)) return isa;
  return Isa::baseline;
}

Isa select_isa_from_env() {
  const char* env = std::getenv("PYENGINE_ISA");
  const std::string value = env ? env : "";
  Isa chosen = best_isa();
  if (!value.empty() && value != "auto") {
    bool known = false;
    for (Isa isa : kAllIsas) {
      if (value == isa_name(isa)) {
        chosen = isa;
        known = true;
      }
    }
    if (!known)
      throw std::runtime_error("PYENGINE_ISA='" + value + "' is not an ISA path; use one of "
                               "baseline, avx2, avx512 or auto (available here: " +
                               join(available_names(), ", ") + ")");
    if (!isa_compiled(chosen))
      throw std::runtime_error("PYENGINE_ISA=" + value + ": this build did not compile the " +
                               value + " path (available here: " +
                               join(available_names(), ", ") + ")");
    const std::vector<std::string> missing = isa_missing_features(chosen);
    if (!missing.empty())
      throw std::runtime_error("PYENGINE_ISA=" + value + ": this CPU lacks " +
                               join(missing, ", ") + ", which the " + value +
                               " path needs (available here: " + join(available_names(), ", ") +
                               ")");
  }
  g_active.store(static_cast<int>(chosen), std::memory_order_relaxed);
  return chosen;
}

Isa active_isa() {
  const int a = g_active.load(std::memory_order_relaxed);
  if (a >= 0) return static_cast<Isa>(a);
  const Isa best = best_isa();
  g_active.store(static_cast<int>(best), std::memory_order_relaxed);
  return best;
}

}  // namespace pyengine::cpu
