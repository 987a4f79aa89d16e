// The CUDA emulator's tensor-core API: nvcuda::wmma (CUDA's <mma.h>) for the TF32 shape
// m16n16k8, what csrc/cuda's TF32 kernels use. Included by csrc/emu/cuda_emu.h.
//
// Semantics kept from CUDA:
//   - load_matrix_sync, store_matrix_sync and mma_sync are warp collectives: every lane of the
//     warp must reach them (each starts with a full-warp barrier, so a lane that skips one, or
//     a tile written by another warp without a __syncthreads before, shows up as in CUDA);
//   - mptr must be 256-bit (32-byte) aligned and ldm a multiple of 16 bytes, as CUDA requires
//     (a violation stops the launch with an error instead of being undefined behaviour);
//   - mma_sync multiplies TF32 operands: the low 13 mantissa bits of each fp32 element are
//     ignored (truncated), as the tensor cores do, so a kernel that forgets __float_to_tf32
//     gets the truncated answer here too; products are exact in fp32 and the sum is fp32;
//   - __float_to_tf32 rounds to nearest, ties away from zero (cvt.rna.tf32.f32).
// What differs: the mapping of tile elements to lanes is unspecified in CUDA (x[] of a
// fragment holds num_elements values of the tile per lane, in an order kernels must not rely
// on); here every lane holds the whole tile in row-major order. Kernels may only apply
// elementwise operations to x[] (as CUDA allows), which behave the same under both mappings.
//
// Shape letters: M N K the fragment shape (16, 16, 8); rows x cols of a stored tile.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pyengine::emu::detail {
// Stops the running kernel with `message` (the launch raises it); for API misuse in a kernel.
[[noreturn]] void kernel_error(const char* message);
}  // namespace pyengine::emu::detail

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <class Use, int M, int N, int K>
struct Tile;
template <int M, int N, int K>
struct Tile<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Tile<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Tile<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

template <class T>
struct Storage {
  using type = T;
};
template <>
struct Storage<precision::tf32> {
  using type = float;
};

inline void warp_barrier() { __syncwarp(); }

// CUDA's alignment rules of a tile in memory; `message` names the call.
inline void check_pointer(const void* p, unsigned ldm, const char* message) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * sizeof(float)) % 16 != 0)
    ::pyengine::emu::detail::kernel_error(message);
}

// Element (r, c) of a tile at p with leading dimension ldm.
template <class T>
inline T& at(T* p, unsigned ldm, bool row_major_layout, int r, int c) {
  return row_major_layout ? p[r * ldm + c] : p[c * ldm + r];
}

// What every load_matrix_sync does: the warp barrier, CUDA's alignment rules, then the
// rows x cols tile at mptr into x (row-major, every lane the whole tile).
inline void load_tile(float* x, int rows, int cols, const float* mptr, unsigned ldm,
                      bool row_major_layout) {
  warp_barrier();
  check_pointer(mptr, ldm, "wmma::load_matrix_sync: mptr must be 32-byte aligned and ldm a "
                           "multiple of 16 bytes");
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) x[r * cols + c] = at(mptr, ldm, row_major_layout, r, c);
}

// The TF32 value a tensor core reads from an fp32 register: the low 13 bits dropped.
inline float truncate_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u &= 0xffffe000u;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace detail

// (Emulated: every lane holds the whole tile, row-major; see the file header.)
template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
 public:
  using element_type = typename detail::Storage<T>::type;
  static constexpr int rows = detail::Tile<Use, M, N, K>::rows;
  static constexpr int cols = detail::Tile<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  element_type x[num_elements];
};

template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f,
                          typename fragment<Use, M, N, K, T, Layout>::element_type v) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = v;
}

// matrix_a / matrix_b: the layout is the fragment's (row_major or col_major).
template <class Use, int M, int N, int K, class T, class Layout>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const float* mptr,
                             unsigned ldm) {
  static_assert(std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value,
                "an operand fragment names its layout");
  detail::load_tile(f.x, f.rows, f.cols, mptr, ldm, std::is_same<Layout, row_major>::value);
}

// The accumulator: the memory layout is an argument.
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* mptr,
                             unsigned ldm, layout_t layout) {
  detail::load_tile(f.x, f.rows, f.cols, mptr, ldm, layout == mem_row_major);
}

template <int M, int N, int K>
inline void store_matrix_sync(float* mptr, const fragment<accumulator, M, N, K, float>& f,
                              unsigned ldm, layout_t layout) {
  detail::warp_barrier();
  detail::check_pointer(mptr, ldm, "wmma::store_matrix_sync: mptr must be 32-byte aligned and "
                                   "ldm a multiple of 16 bytes");
  // Every lane stores the same tile; the writes are identical, as one warp-wide store.
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c)
      detail::at(mptr, ldm, layout == mem_row_major, r, c) = f.x[r * f.cols + c];
}

// d = a b + c, TF32 operands (low mantissa bits ignored), fp32 accumulation in k order.
template <int M, int N, int K, class LA, class LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d,
                     const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
                     const fragment<matrix_b, M, N, K, precision::tf32, LB>& b,
                     const fragment<accumulator, M, N, K, float>& c) {
  detail::warp_barrier();
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; ++k)
        s += detail::truncate_tf32(a.x[i * K + k]) * detail::truncate_tf32(b.x[k * N + j]);
      out[i * N + j] = s;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
}

// Round to the nearest TF32 value (10 mantissa bits), ties away from zero; NaN and infinity
// pass through. The result is an fp32 whose low 13 bits are zero.
inline float __float_to_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&v, &u, 4);
  return v;
}

}  // namespace wmma
}  // namespace nvcuda
