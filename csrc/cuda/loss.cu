// Loss kernels (float32): fused cross-entropy (log-softmax + NLL, class-index or probability
// targets, class weights, ignore_index, label smoothing), NLL, MSE and smooth L1, forward and
// backward, with numpy_ref/loss.py's weighting and reductions.
//
// Shape letters: M rows, C classes, n elements.
//
// Cross-entropy works a row per warp: one online pass gives the row's max m and
// s = sum exp(x - m); log-probabilities are formed as (x - m) - log(s), never as x - lse, so a
// row of logits near 1e4 keeps its precision (lse itself has an ulp of 1e-3 there). Per-row
// losses (and target weights) go to a workspace; 'mean' and 'sum' add them up in a second,
// deterministic pass in double: per-block partial sums over a grid whose size depends on the
// length only, then one block adds the partials in order.
#include "cuda/loss.h"

#include "cuda/common.cuh"
#include "cuda/reduce.cuh"

namespace pyengine::gpu {

namespace {

constexpr int kRowThreads = 128;  // 4 rows per block, a warp each
constexpr int kThreads = 256;
constexpr int kPartials = 256;   // blocks of the first pass of a sum

// ---- deterministic sum of a float array into one double ----------------------------------
__global__ void __launch_bounds__(kThreads) partial_sums_kernel(double* __restrict__ partial,
                                                               const float* __restrict__ a,
                                                               int64_t n) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) acc += a[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(kThreads) finish_sum_kernel(double* __restrict__ out,
                                                             const double* __restrict__ partial,
                                                             int parts) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < parts; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

// *out = sum of a[0, n) in double. `partial` holds kPartials doubles.
void sum_to_double(double* out, double* partial, const float* a, int64_t n, cudaStream_t st) {
  const unsigned blocks = grid_blocks(n, kThreads, kPartials);
  launch(partial_sums_kernel, dim3(blocks), dim3(kThreads), 0, st, partial, a, n);
  launch(finish_sum_kernel, dim3(1), dim3(kThreads), 0, st, out, partial,
         static_cast<int>(blocks));
}

// loss[0] = total (sum) or total / denominator (mean); the denominator is sums[1] when
// `weighted`, else `count`. 0/0 gives NaN, as in PyTorch.
__global__ void finish_loss_kernel(float* __restrict__ loss, const double* __restrict__ sums,
                                   double count, int reduction, bool weighted) {
  if (threadIdx.x != 0) return;
  const double total = sums[0];
  if (static_cast<Reduction>(reduction) == Reduction::sum) {
    *loss = static_cast<float>(total);
  } else {
    const double den = weighted ? sums[1] : count;
    *loss = static_cast<float>(total / den);
  }
}

// d(reduced loss) / d(row or element loss): dloss[r] for none, dloss[0] for sum,
// dloss[0] / denominator for mean (denominator: *den when non-null, else count).
__device__ __forceinline__ float upstream(const float* dloss, int64_t r, Reduction red,
                                          const double* den, double count) {
  if (red == Reduction::none) return dloss[r];
  if (red == Reduction::sum) return dloss[0];
  return static_cast<float>(static_cast<double>(dloss[0]) / (den != nullptr ? *den : count));
}

struct CrossEntropyGeom {
  int64_t M, C;
  int64_t ignore_index;
  float ls;  // label smoothing
  Reduction reduction;
};

__device__ __forceinline__ float class_weight(const float* weight, int64_t c) {
  return weight != nullptr ? weight[c] : 1.0f;
}

// Row statistics of logits row `row`: every lane gets (m, log s).
__device__ __forceinline__ MaxSum row_max_sum(const float* xr, int64_t C, int lane) {
  MaxSum st = max_sum_identity();
  for (int64_t c = lane; c < C; c += kWarpSize) max_sum_add(st, xr[c]);
  return max_sum_finish(warp_max_sum(st));
}

// Class-index targets: row loss w_t * -logp[t], with smoothing
// (1 - ls) * w_t * -logp[t] + ls / C * sum_c w_c * -logp[c]; 0 on ignored rows.
__global__ void __launch_bounds__(kRowThreads) ce_index_forward_kernel(
    float* __restrict__ row_loss, float* __restrict__ row_weight, float* __restrict__ lse,
    const float* __restrict__ logits, const int64_t* __restrict__ target,
    const float* __restrict__ weight, CrossEntropyGeom g) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = blockDim.x / kWarpSize;
  for (int64_t r = blockIdx.x * warps + threadIdx.x / kWarpSize; r < g.M;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const float* xr = logits + r * g.C;
    const MaxSum st = row_max_sum(xr, g.C, lane);
    const float log_s = logf(st.s);
    const int64_t t = target[r];
    const bool valid = t != g.ignore_index;
    float smooth = 0.0f;
    if (g.ls > 0.0f) {  // only then: at ls = 0 a masked (-inf) logit would give 0 * inf
      for (int64_t c = lane; c < g.C; c += kWarpSize)
        smooth += class_weight(weight, c) * -((xr[c] - st.m) - log_s);
      smooth = warp_sum(smooth);
    }
    if (lane == 0) {
      float loss = 0.0f, w_t = 0.0f;
      if (valid) {
        w_t = class_weight(weight, t);
        loss = w_t * -((xr[t] - st.m) - log_s);
        if (g.ls > 0.0f) loss = (1.0f - g.ls) * loss + (g.ls / static_cast<float>(g.C)) * smooth;
      }
      row_loss[r] = loss;
      if (row_weight != nullptr) row_weight[r] = w_t;
      lse[r] = st.m + log_s;
    }
  }
}

// The smoothed, weighted target probability w_c * t'_c, t' = (1 - ls) t + ls / C.
__device__ __forceinline__ float prob_coefficient(const float* tr, const float* weight, int64_t c,
                                                  float ls, int64_t C) {
  float t = tr[c];
  if (ls > 0.0f) t = t * (1.0f - ls) + ls / static_cast<float>(C);
  return class_weight(weight, c) * t;
}

// Probability targets: row loss -sum_c w_c t'_c logp[c].
__global__ void __launch_bounds__(kRowThreads) ce_prob_forward_kernel(
    float* __restrict__ row_loss, float* __restrict__ lse, const float* __restrict__ logits,
    const float* __restrict__ target, const float* __restrict__ weight, CrossEntropyGeom g) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = blockDim.x / kWarpSize;
  for (int64_t r = blockIdx.x * warps + threadIdx.x / kWarpSize; r < g.M;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const float* xr = logits + r * g.C;
    const float* tr = target + r * g.C;
    const MaxSum st = row_max_sum(xr, g.C, lane);
    const float log_s = logf(st.s);
    float loss = 0.0f;
    for (int64_t c = lane; c < g.C; c += kWarpSize)
      loss += prob_coefficient(tr, weight, c, g.ls, g.C) * -((xr[c] - st.m) - log_s);
    loss = warp_sum(loss);
    if (lane == 0) {
      row_loss[r] = loss;
      lse[r] = st.m + log_s;
    }
  }
}

// dlogits = g * (softmax * A - a), a_c the coefficient of -logp[c] in the row's loss and A its
// sum over the row.
__global__ void __launch_bounds__(kRowThreads) ce_backward_kernel(
    float* __restrict__ dlogits, const float* __restrict__ dloss, const double* __restrict__ den,
    const float* __restrict__ logits, const int64_t* __restrict__ target_index,
    const float* __restrict__ target_prob, const float* __restrict__ weight,
    CrossEntropyGeom g) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = blockDim.x / kWarpSize;
  const float uniform = g.ls / static_cast<float>(g.C);
  for (int64_t r = blockIdx.x * warps + threadIdx.x / kWarpSize; r < g.M;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const float* xr = logits + r * g.C;
    float* dr = dlogits + r * g.C;
    const MaxSum st = row_max_sum(xr, g.C, lane);
    const float log_s = logf(st.s);
    float up = upstream(dloss, r, g.reduction, den, static_cast<double>(g.M));
    if (target_prob != nullptr) {
      const float* tr = target_prob + r * g.C;
      float total = 0.0f;
      for (int64_t c = lane; c < g.C; c += kWarpSize)
        total += prob_coefficient(tr, weight, c, g.ls, g.C);
      total = warp_sum(total);
      for (int64_t c = lane; c < g.C; c += kWarpSize) {
        const float sm = expf((xr[c] - st.m) - log_s);
        dr[c] = up * (sm * total - prob_coefficient(tr, weight, c, g.ls, g.C));
      }
    } else {
      const int64_t t = target_index[r];
      const bool valid = t != g.ignore_index;
      const float w_t = valid ? class_weight(weight, t) : 0.0f;
      if (!valid) up = 0.0f;
      float total = (1.0f - g.ls) * w_t;
      if (g.ls > 0.0f) {
        float sum_w = 0.0f;
        for (int64_t c = lane; c < g.C; c += kWarpSize) sum_w += class_weight(weight, c);
        total += uniform * warp_sum(sum_w);
      }
      for (int64_t c = lane; c < g.C; c += kWarpSize) {
        const float sm = expf((xr[c] - st.m) - log_s);
        float a = (valid && c == t) ? (1.0f - g.ls) * w_t : 0.0f;
        if (g.ls > 0.0f) a += uniform * class_weight(weight, c);
        dr[c] = up * (sm * total - a);
      }
    }
  }
}

// ---- NLL on log-probabilities ---------------------------------------------------------------
__global__ void __launch_bounds__(kThreads) nll_forward_kernel(
    float* __restrict__ row_loss, float* __restrict__ row_weight, const float* __restrict__ logp,
    const int64_t* __restrict__ target, const float* __restrict__ weight, int64_t M, int64_t C,
    int64_t ignore_index) {
  for (int64_t r = global_thread_index(); r < M; r += grid_stride()) {
    const int64_t t = target[r];
    const bool valid = t != ignore_index;
    const float w_t = valid ? class_weight(weight, t) : 0.0f;
    row_loss[r] = valid ? -logp[r * C + t] * w_t : 0.0f;
    if (row_weight != nullptr) row_weight[r] = w_t;
  }
}

__global__ void __launch_bounds__(kThreads) target_weight_kernel(
    float* __restrict__ row_weight, const int64_t* __restrict__ target,
    const float* __restrict__ weight, int64_t M, int64_t ignore_index) {
  for (int64_t r = global_thread_index(); r < M; r += grid_stride()) {
    const int64_t t = target[r];
    row_weight[r] = t != ignore_index ? class_weight(weight, t) : 0.0f;
  }
}

__global__ void __launch_bounds__(kThreads) nll_backward_kernel(
    float* __restrict__ dlogp, const float* __restrict__ dloss, const double* __restrict__ den,
    const int64_t* __restrict__ target, const float* __restrict__ weight, int64_t M, int64_t C,
    int64_t ignore_index, Reduction reduction) {
  for (int64_t i = global_thread_index(); i < M * C; i += grid_stride()) {
    const int64_t r = i / C, c = i % C;
    const int64_t t = target[r];
    float v = 0.0f;
    if (t != ignore_index && c == t)
      v = -upstream(dloss, r, reduction, den, static_cast<double>(M)) * class_weight(weight, t);
    dlogp[i] = v;
  }
}

// ---- element-wise losses: kind 0 mse, 1 smooth L1 -------------------------------------------
__device__ __forceinline__ double pointwise_value(double d, int kind, double beta) {
  if (kind == 0) return d * d;
  const double ad = d < 0 ? -d : d;
  if (beta == 0.0) return ad;
  return ad < beta ? 0.5 * d * d / beta : ad - 0.5 * beta;
}

__device__ __forceinline__ double pointwise_slope(double d, int kind, double beta) {
  if (kind == 0) return 2.0 * d;
  if (beta == 0.0) return d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
  return d < -beta ? -1.0 : (d > beta ? 1.0 : d / beta);
}

__global__ void __launch_bounds__(kThreads) pointwise_forward_kernel(
    float* __restrict__ out, const float* __restrict__ x, const float* __restrict__ target,
    int64_t n, int kind, double beta) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride())
    out[i] = static_cast<float>(
        pointwise_value(static_cast<double>(x[i]) - target[i], kind, beta));
}

__global__ void __launch_bounds__(kThreads) pointwise_backward_kernel(
    float* __restrict__ dx, const float* __restrict__ dloss, const float* __restrict__ x,
    const float* __restrict__ target, int64_t n, int kind, double beta, Reduction reduction) {
  for (int64_t i = global_thread_index(); i < n; i += grid_stride()) {
    const double d = static_cast<double>(x[i]) - target[i];
    double g = reduction == Reduction::none ? dloss[i] : dloss[0];
    if (reduction == Reduction::mean) g /= static_cast<double>(n);
    dx[i] = static_cast<float>(pointwise_slope(d, kind, beta) * g);
  }
}

// Reduces per-row (or per-element) losses in `rows` into loss[0]; `weights` (or null: divide
// by `count`) is the mean's denominator.
void reduce_loss(float* loss, const float* rows, const float* weights, int64_t count,
                 Reduction red, cudaStream_t st) {
  DeviceBuffer<double> sums(2 + kPartials, st);
  sum_to_double(sums.get(), sums.get() + 2, rows, count, st);
  const bool weighted = red == Reduction::mean && weights != nullptr;
  if (weighted) sum_to_double(sums.get() + 1, sums.get() + 2, weights, count, st);
  launch(finish_loss_kernel, dim3(1), dim3(32), 0, st, loss, sums.get(),
         static_cast<double>(count), static_cast<int>(red), weighted);
}

unsigned row_blocks(int64_t M) { return grid_blocks(M, kRowThreads / kWarpSize, 65535); }

}  // namespace

void cross_entropy_forward(float* loss, float* lse, const float* logits,
                           const int64_t* target_index, const float* target_prob,
                           const float* weight, int64_t M, int64_t C, const LossArgs& a,
                           StreamHandle stream) {
  const cudaStream_t st = to_stream(stream);
  const CrossEntropyGeom g{M, C, a.ignore_index, a.label_smoothing, a.reduction};
  const bool none = a.reduction == Reduction::none;
  DeviceBuffer<float> rows(none ? 0 : M, st);
  DeviceBuffer<float> weights(none || target_prob != nullptr ? 0 : M, st);
  float* row_loss = none ? loss : rows.get();
  if (target_prob != nullptr)
    launch(ce_prob_forward_kernel, dim3(row_blocks(M)), dim3(kRowThreads), 0, st, row_loss, lse,
           logits, target_prob, weight, g);
  else
    launch(ce_index_forward_kernel, dim3(row_blocks(M)), dim3(kRowThreads), 0, st, row_loss,
           weights.get(), lse, logits, target_index, weight, g);
  if (!none) reduce_loss(loss, row_loss, weights.get(), M, a.reduction, st);
}

void cross_entropy_backward(float* dlogits, const float* dloss, const float* logits,
                            const int64_t* target_index, const float* target_prob,
                            const float* weight, int64_t M, int64_t C, const LossArgs& a,
                            StreamHandle stream) {
  const cudaStream_t st = to_stream(stream);
  const CrossEntropyGeom g{M, C, a.ignore_index, a.label_smoothing, a.reduction};
  // 'mean' over class indices divides by the total weight of the non-ignored rows.
  const bool weighted = a.reduction == Reduction::mean && target_prob == nullptr;
  DeviceBuffer<double> sums(weighted ? 1 + kPartials : 0, st);
  DeviceBuffer<float> row_weight(weighted ? M : 0, st);
  if (weighted) {
    launch(target_weight_kernel, dim3(grid_blocks(M, kThreads)), dim3(kThreads), 0, st,
           row_weight.get(), target_index, weight, M, a.ignore_index);
    sum_to_double(sums.get(), sums.get() + 1, row_weight.get(), M, st);
  }
  launch(ce_backward_kernel, dim3(row_blocks(M)), dim3(kRowThreads), 0, st, dlogits, dloss,
         static_cast<const double*>(weighted ? sums.get() : nullptr), logits, target_index,
         target_prob, weight, g);
}

void nll_loss_forward(float* loss, const float* logp, const int64_t* target, const float* weight,
                      int64_t M, int64_t C, const LossArgs& a, StreamHandle stream) {
  const cudaStream_t st = to_stream(stream);
  const bool none = a.reduction == Reduction::none;
  DeviceBuffer<float> rows(none ? 0 : M, st);
  DeviceBuffer<float> weights(none ? 0 : M, st);
  float* row_loss = none ? loss : rows.get();
  launch(nll_forward_kernel, dim3(grid_blocks(M, kThreads)), dim3(kThreads), 0, st, row_loss,
         weights.get(), logp, target, weight, M, C, a.ignore_index);
  if (!none) reduce_loss(loss, row_loss, weights.get(), M, a.reduction, st);
}

void nll_loss_backward(float* dlogp, const float* dloss, const int64_t* target,
                       const float* weight, int64_t M, int64_t C, const LossArgs& a,
                       StreamHandle stream) {
  const cudaStream_t st = to_stream(stream);
  const bool weighted = a.reduction == Reduction::mean;
  DeviceBuffer<double> sums(weighted ? 1 + kPartials : 0, st);
  DeviceBuffer<float> row_weight(weighted ? M : 0, st);
  if (weighted) {
    launch(target_weight_kernel, dim3(grid_blocks(M, kThreads)), dim3(kThreads), 0, st,
           row_weight.get(), target, weight, M, a.ignore_index);
    sum_to_double(sums.get(), sums.get() + 1, row_weight.get(), M, st);
  }
  launch(nll_backward_kernel, dim3(grid_blocks(M * C, kThreads)), dim3(kThreads), 0, st, dlogp,
         dloss, static_cast<const double*>(weighted ? sums.get() : nullptr), target, weight, M, C,
         a.ignore_index, a.reduction);
}

void pointwise_loss_forward(float* loss, const float* x, const float* target, int64_t n,
                            int kind, const LossArgs& a, StreamHandle stream) {
  const cudaStream_t st = to_stream(stream);
  const bool none = a.reduction == Reduction::none;
  DeviceBuffer<float> values(none ? 0 : n, st);
  float* out = none ? loss : values.get();
  launch(pointwise_forward_kernel, dim3(grid_blocks(n, kThreads)), dim3(kThreads), 0, st, out, x,
         target, n, kind, static_cast<double>(a.beta));
  if (!none) reduce_loss(loss, out, nullptr, n, a.reduction, st);
}

void pointwise_loss_backward(float* dx, const float* dloss, const float* x, const float* target,
                             int64_t n, int kind, const LossArgs& a, StreamHandle stream) {
  launch(pointwise_backward_kernel, dim3(grid_blocks(n, kThreads)), dim3(kThreads), 0,
         to_stream(stream), dx, dloss, x, target, n, kind, static_cast<double>(a.beta),
         a.reduction);
}

}  // namespace pyengine::gpu
