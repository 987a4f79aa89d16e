// How the native CPU module was built and what this CPU can run: compiler, flags, build type,
// OpenMP, the ISA paths compiled in, and the CPU's features. The bindings turn it into
// pyengine._cpu.build_info(); `pyengine info` prints it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pyengine::cpu {

struct BuildInfo {
  std::string compiler;          // "<id> <version>", e.g. "GNU 12.2.0"
  std::string compiler_path;
  std::string cxx_flags;         // the flags of the baseline kernels (build type and ISA included)
  std::string build_type;        // Release, Debug, ...
  std::string cmake_version;
  bool openmp = false;
  int openmp_version = 0;        // _OPENMP, yyyymm (201511 is OpenMP 4.5); 0 without OpenMP
  std::string openmp_spec;       // "4.5", "5.0", ...; "" without OpenMP
  std::vector<std::string> isa_paths;  // compiled paths: "baseline", later "avx2", "avx512"
  std::string sanitize;          // "" or the -fsanitize= list
  std::string cuda;              // what the configure step found of CUDA
};

BuildInfo build_info();

// (feature, supported by this CPU) for the features the ISA paths need; empty off x86-64.
std::vector<std::pair<std::string, bool>> cpu_features();

}  // namespace pyengine::cpu
