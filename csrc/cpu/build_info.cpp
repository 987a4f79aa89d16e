// build_info() and cpu_features() (see build_info.h). The values come from the header that
// CMake generates from build_config.h.in and from the compiler's own macros.
#include "cpu/build_info.h"

#include <sstream>

#include "pyengine_build_config.h"

namespace pyengine::cpu {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The OpenMP specification that an _OPENMP date stands for (the dates the standard assigns).
[[maybe_unused]] std::string openmp_spec(int date) {
  if (date >= 202111) return "5.2";
  if (date >= 202011) return "5.1";
  if (date >= 201811) return "5.0";
  if (date >= 201511) return "4.5";
  if (date >= 201307) return "4.0";
  if (date >= 201107) return "3.1";
  if (date >= 200805) return "3.0";
  return date > 0 ? "<3.0" : "";
}

}  // namespace

BuildInfo build_info() {
  BuildInfo info;
  info.compiler = std::string(PYENGINE_CXX_COMPILER_ID) + " " + PYENGINE_CXX_COMPILER_VERSION;
  info.compiler_path = PYENGINE_CXX_COMPILER_PATH;
  info.cxx_flags = PYENGINE_BUILD_FLAGS_STR;
  info.build_type = PYENGINE_BUILD_TYPE;
  info.cmake_version = PYENGINE_CMAKE_VERSION;
#ifdef _OPENMP
  info.openmp = true;
  info.openmp_version = _OPENMP;
  info.openmp_spec = openmp_spec(_OPENMP);
#endif
  info.isa_paths = split_commas(PYENGINE_ISA_PATHS_STR);
  info.sanitize = PYENGINE_SANITIZE_STR;
  info.cuda = PYENGINE_CUDA_STATUS_STR;
  return info;
}

std::vector<std::pair<std::string, bool>> cpu_features() {
  std::vector<std::pair<std::string, bool>> out;
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  out.emplace_back("sse4.2", __builtin_cpu_supports("sse4.2"));
  out.emplace_back("popcnt", __builtin_cpu_supports("popcnt"));
  out.emplace_back("avx", __builtin_cpu_supports("avx"));
  out.emplace_back("avx2", __builtin_cpu_supports("avx2"));
  out.emplace_back("fma", __builtin_cpu_supports("fma"));
  out.emplace_back("avx512f", __builtin_cpu_supports("avx512f"));
  out.emplace_back("avx512bw", __builtin_cpu_supports("avx512bw"));
  out.emplace_back("avx512vl", __builtin_cpu_supports("avx512vl"));
  out.emplace_back("avx512dq", __builtin_cpu_supports("avx512dq"));
#endif
  return out;
}

}  // namespace pyengine::cpu
