// The CUDA emulator's scheduler: runs a grid block by block, each CUDA thread on a fiber, in a
// seeded shuffled order between barriers (see cuda_emu.h for the model).
//
// One BlockRunner per host thread owns the fibers of the block it runs. A thread runs until it
// stops at __syncthreads, waits in a warp collective, or ends. A warp collective completes when
// its last lane arrives: that lane computes the result of every lane and makes the others
// runnable again. Each phase between two __syncthreads draws one of two orders:
//   interleaved   sweeps over the runnable threads, each resumed once per sweep in shuffled
//                 order: threads advance roughly in step, and any two may swap order;
//   warp by warp  the warps in shuffled order, each run (its lanes interleaved) until all of
//                 them wait at __syncthreads: one warp runs far ahead of the others, as it may
//                 on a GPU.
// A race between threads of different warps or lanes of one warp shows up under one order or
// the other. When no thread is runnable, either every live thread waits at __syncthreads (the
// barrier opens and a new phase starts) or the block is stuck, which is reported as an error
// naming who waits where.
//
// Shape letters: none.
#include <algorithm>
#include <cstring>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "emu/cuda_emu.h"
#include "emu/fiber.h"

namespace pyengine::emu {

namespace detail {
__thread Builtins* current = nullptr;
}  // namespace detail

namespace {

constexpr int kWarp = 32;

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 0);
  return (end != nullptr && *end == '\0') ? v : fallback;
}

std::atomic<uint64_t> g_seed{env_u64("PYENGINE_EMU_SEED", 0)};

size_t stack_bytes() {
#if defined(__SANITIZE_ADDRESS__)
  const uint64_t default_kb = 512;  // instrumented frames with redzones are several times larger
#else
  const uint64_t default_kb = 64;
#endif
  static const size_t bytes = static_cast<size_t>(env_u64("PYENGINE_EMU_STACK_KB", default_kb))
                              * 1024;
  return bytes;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

enum class State : unsigned char { not_started, running, ready, at_sync, at_warp, done };

struct ThreadState {
  Builtins builtins{};
  fiber::Context ctx;
  fiber::Stack stack;
  State state = State::not_started;
  int lane = 0;
  int warp = 0;
  // The warp collective this lane is in: its arguments, then its result.
  detail::WarpOp op = detail::WarpOp::sync;
  unsigned mask = 0;
  uint64_t bits = 0;
  int param = 0;
  int width = kWarp;
  uint64_t result = 0;
};

// Lanes of one warp waiting in a collective with one mask.
struct WarpGroup {
  unsigned mask;
  detail::WarpOp op;
  unsigned arrived;
};

const char* op_name(detail::WarpOp op) {
  switch (op) {
    case detail::WarpOp::sync: return "__syncwarp";
    case detail::WarpOp::shfl_idx: return "__shfl_sync";
    case detail::WarpOp::shfl_up: return "__shfl_up_sync";
    case detail::WarpOp::shfl_down: return "__shfl_down_sync";
    case detail::WarpOp::shfl_xor: return "__shfl_xor_sync";
    case detail::WarpOp::ballot: return "__ballot_sync";
    case detail::WarpOp::any: return "__any_sync";
    case detail::WarpOp::all: return "__all_sync";
  }
  return "?";
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string describe(const dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) +
         ")";
}

std::string describe(const uint3& d) { return describe(dim3(d)); }

class BlockRunner;
__thread BlockRunner* t_active = nullptr;  // the runner of this host thread while it runs

class BlockRunner {
 public:
  ~BlockRunner() {
    for (ThreadState& t : threads_) release_stack(t);
    for (const fiber::Stack& s : free_stacks_) fiber::free_stack(s);
  }

  // Runs block `linear` of the grid to its end. Returns an empty string, or what went wrong.
  std::string run_block(int64_t linear, dim3 grid, dim3 block, size_t shared_bytes,
                        detail::KernelBody body, void* ctx) {
    body_ = body;
    body_ctx_ = ctx;
    error_.clear();
    const int n = static_cast<int>(block.x * block.y * block.z);
    uint3 bidx;
    bidx.x = static_cast<unsigned>(linear % grid.x);
    bidx.y = static_cast<unsigned>((linear / grid.x) % grid.y);
    bidx.z = static_cast<unsigned>(linear / (static_cast<int64_t>(grid.x) * grid.y));
    threads_.resize(n);
    for (int i = 0; i < n; ++i) {
      ThreadState& t = threads_[i];
      t.builtins.thread_idx = uint3{i % block.x, (i / block.x) % block.y,
                                    i / (block.x * block.y)};
      t.builtins.block_idx = bidx;
      t.builtins.block_dim = block;
      t.builtins.grid_dim = grid;
      t.state = State::not_started;
      t.lane = i % kWarp;
      t.warp = i / kWarp;
    }
    const int warps = (n + kWarp - 1) / kWarp;
    groups_.assign(warps, {});
    exists_.assign(warps, 0xffffffffu);
    if (n % kWarp != 0) exists_[warps - 1] = (1u << (n % kWarp)) - 1;
    shared_bytes_ = shared_bytes;
    if (shared_bytes > 0) {
      shared_.resize((shared_bytes + 15) / 16);
      std::memset(shared_.data(), 0xff, shared_.size() * 16);
    }
    rng_ = g_seed.load() ^ (0x632be59bd9b4e019ull * static_cast<uint64_t>(linear + 1));

    ready_.resize(n);
    for (int i = 0; i < n; ++i) ready_[i] = i;
    t_active = this;
    for (;;) {
      // Each phase (up to the next __syncthreads) draws one of two orders. Interleaved: every
      // runnable thread once per sweep, so threads move roughly in step. Warp by warp: one
      // warp runs to the barrier before the next starts, as a warp may run far ahead of the
      // others on a GPU, which exposes a shared buffer that one warp rewrites while another
      // has yet to read it. Both are needed: each misses races the other catches.
      if (splitmix64(rng_) & 1) {
        if (!run_interleaved()) return abandon();
      } else {
        if (!run_warp_by_warp()) return abandon();
      }
      int at_sync = 0, done = 0;
      for (const ThreadState& t : threads_) {
        at_sync += t.state == State::at_sync;
        done += t.state == State::done;
      }
      if (done == n) break;
      if (at_sync + done < n || done > 0) {
        error_ = stuck_message(at_sync, done);
        return abandon();
      }
      for (int i = 0; i < n; ++i) {  // every live thread reached __syncthreads: open it
        threads_[i].state = State::ready;
        ready_.push_back(i);
      }
    }
    t_active = nullptr;
    return {};
  }

  // Null when the launch asked for none: a kernel that uses it anyway faults at once.
  void* shared_memory() { return shared_bytes_ == 0 ? nullptr : shared_.data(); }

  void syncthreads() {
    ThreadState& t = *running_;
    t.state = State::at_sync;
    yield(t);
  }

  unsigned active_mask() {
    const ThreadState& t = *running_;
    unsigned mask = 0;
    for (int l = 0; l < kWarp; ++l)
      if ((exists_[t.warp] >> l & 1u) && threads_[t.warp * kWarp + l].state != State::done)
        mask |= 1u << l;
    return mask;
  }

  uint64_t warp_collective(detail::WarpOp op, unsigned mask, uint64_t bits, int param,
                           int width) {
    ThreadState& t = *running_;
    const unsigned me = 1u << t.lane;
    // Built only on the error paths: a string per collective would dominate the run time.
    auto where = [&] {
      return std::string(op_name(op)) + " by thread " + describe(t.builtins.thread_idx) +
             " (warp " + std::to_string(t.warp) + ", lane " + std::to_string(t.lane) +
             ") with mask " + hex(mask);
    };
    if (!(mask & me)) fail(where() + ": the calling lane must be in the mask");
    if (op >= detail::WarpOp::shfl_idx && op <= detail::WarpOp::shfl_xor &&
        (width < 1 || width > kWarp || (width & (width - 1)) != 0))
      fail(where() + ": width " + std::to_string(width) + " is not a power of 2 in [1, 32]");
    if (mask & ~exists_[t.warp])
      fail(where() + ": the mask names lanes " + hex(mask & ~exists_[t.warp]) +
           " that this block does not have");
    for (int l = 0; l < kWarp; ++l)
      if ((mask >> l & 1u) && threads_[t.warp * kWarp + l].state == State::done)
        fail(where() + ": lane " + std::to_string(l) + " of the mask has already exited");
    std::vector<WarpGroup>& groups = groups_[t.warp];
    WarpGroup* group = nullptr;
    for (WarpGroup& g : groups) {
      if (g.mask == mask) {
        group = &g;
      } else if (g.mask & me) {
        fail(where() + ": lanes " + hex(g.arrived) + " wait for this lane in " +
             op_name(g.op) + " with mask " + hex(g.mask));
      }
    }
    if (group != nullptr && group->op != op)
      fail(where() + ": lanes " + hex(group->arrived) + " of the same mask wait in " +
           op_name(group->op));
    if (group == nullptr) {
      groups.push_back(WarpGroup{mask, op, 0});
      group = &groups.back();
    }
    t.op = op;
    t.mask = mask;
    t.bits = bits;
    t.param = param;
    t.width = width;
    group->arrived |= me;
    if (group->arrived == mask) {
      complete(t.warp, mask, op);
      groups.erase(groups.begin() + (group - groups.data()));
      return t.result;
    }
    t.state = State::at_warp;
    yield(t);
    return t.result;
  }

  // Runs the CUDA thread that `running_` names from its start (called on its own stack).
  static void fiber_main() {
    BlockRunner* r = t_active;
    fiber::on_fiber_start(&r->host_);
    r->body_(r->body_ctx_);
    ThreadState& t = *r->running_;
    t.state = State::done;
    fiber::switch_to(&t.ctx, &r->host_, /*exiting=*/true);
    std::abort();  // a finished fiber is never resumed
  }

  // An API misuse found by a device function (wmma alignment, ...): stops the launch.
  [[noreturn]] void kernel_error(const char* message) {
    fail(std::string("CUDA emulator: ") + message);
  }

 private:
  void shuffle(std::vector<int>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(splitmix64(rng_) % i);
      std::swap(v[i - 1], v[j]);
    }
  }

  // Runs the ready threads, and those that warp collectives release, in shuffled sweeps until
  // none is runnable. False on an error.
  bool run_interleaved() {
    while (!ready_.empty()) {
      shuffle(ready_);
      next_.clear();
      for (int i : ready_) {
        resume(threads_[i]);
        if (!error_.empty()) return false;
      }
      ready_.swap(next_);
    }
    return true;
  }

  // Runs the warps in shuffled order, each until none of its threads is runnable (collectives
  // release lanes of the same warp only). False on an error.
  bool run_warp_by_warp() {
    warp_order_.clear();
    for (int i : ready_)
      if (warp_order_.empty() || warp_order_.back() != threads_[i].warp)
        warp_order_.push_back(threads_[i].warp);
    std::sort(warp_order_.begin(), warp_order_.end());
    warp_order_.erase(std::unique(warp_order_.begin(), warp_order_.end()), warp_order_.end());
    shuffle(warp_order_);
    lanes_.swap(ready_);
    ready_.clear();
    for (int w : warp_order_) {
      for (int i : lanes_)
        if (threads_[i].warp == w) ready_.push_back(i);
      if (!run_interleaved()) return false;
    }
    return true;
  }

  void resume(ThreadState& t) {
    if (t.state == State::not_started) {
      if (free_stacks_.empty()) {
        t.stack = fiber::allocate_stack(stack_bytes());
      } else {
        t.stack = free_stacks_.back();
        free_stacks_.pop_back();
        fiber::prepare_stack(t.stack);
      }
      fiber::make_context(&t.ctx, t.stack, &BlockRunner::fiber_main);
    }
    t.state = State::running;
    running_ = &t;
    detail::current = &t.builtins;
    fiber::switch_to(&host_, &t.ctx);
    detail::current = nullptr;
    running_ = nullptr;
    if (t.state == State::done) release_stack(t);
  }

  void yield(ThreadState& t) { fiber::switch_to(&t.ctx, &host_); }

  // Records the first error and leaves this fiber for good; the block is abandoned.
  [[noreturn]] void fail(const std::string& message) {
    if (error_.empty()) error_ = message;
    ThreadState& t = *running_;
    fiber::switch_to(&t.ctx, &host_, /*exiting=*/true);
    std::abort();
  }

  void complete(int warp, unsigned mask, detail::WarpOp op) {
    ThreadState* lanes = &threads_[warp * kWarp];
    unsigned votes = 0;
    for (int l = 0; l < kWarp; ++l)
      if ((mask >> l & 1u) && lanes[l].param != 0) votes |= 1u << l;
    for (int l = 0; l < kWarp; ++l) {
      if (!(mask >> l & 1u)) continue;
      ThreadState& u = lanes[l];
      const int w = u.width;
      const int segment = l & ~(w - 1);
      int src = l;
      switch (op) {
        case detail::WarpOp::shfl_idx: src = segment + (u.param & (w - 1)); break;
        case detail::WarpOp::shfl_up: src = l - u.param < segment ? l : l - u.param; break;
        case detail::WarpOp::shfl_down: src = l + u.param >= segment + w ? l : l + u.param; break;
        case detail::WarpOp::shfl_xor: {
          const int x = l ^ u.param;
          src = (x < 0 || x >= segment + w) ? l : x;
          break;
        }
        default: break;
      }
      switch (op) {
        case detail::WarpOp::sync: u.result = 0; break;
        case detail::WarpOp::ballot: u.result = votes; break;
        case detail::WarpOp::any: u.result = votes != 0; break;
        case detail::WarpOp::all: u.result = votes == mask; break;
        default:
          if (!(mask >> src & 1u)) {
            if (error_.empty())
              error_ = std::string(op_name(op)) + " with mask " + hex(mask) + ": lane " +
                       std::to_string(l) + " of warp " + std::to_string(warp) +
                       " reads lane " + std::to_string(src) +
                       ", which is not in the mask (an undefined value on a GPU)";
            u.result = 0;
          } else {
            u.result = lanes[src].bits;
          }
      }
      if (u.state == State::at_warp) {
        u.state = State::ready;
        next_.push_back(warp * kWarp + l);
      }
    }
    if (!error_.empty()) fail(error_);
  }

  std::string stuck_message(int at_sync, int done) {
    const int n = static_cast<int>(threads_.size());
    std::string msg = "block " + describe(threads_[0].builtins.block_idx) + " is stuck: ";
    if (done > 0 && at_sync > 0)
      msg += std::to_string(at_sync) + " of " + std::to_string(n) +
             " threads wait at __syncthreads but " + std::to_string(done) +
             " have exited without reaching it (a __syncthreads inside a branch that not every "
             "thread takes)";
    else
      msg += std::to_string(at_sync) + " threads wait at __syncthreads, " +
             std::to_string(done) + " have exited";
    for (size_t w = 0; w < groups_.size(); ++w)
      for (const WarpGroup& g : groups_[w])
        msg += "; warp " + std::to_string(w) + ": lanes " + hex(g.arrived) + " wait in " +
               op_name(g.op) + " for the rest of mask " + hex(g.mask);
    return msg;
  }

  std::string abandon() {
    // The abandoned fibers hold only trivially destructible kernel frames: dropping their
    // stacks is enough.
    for (ThreadState& t : threads_)
      if (t.state != State::not_started && t.state != State::done) release_stack(t);
    for (ThreadState& t : threads_) t.state = State::done;
    t_active = nullptr;
    return error_;
  }

  void release_stack(ThreadState& t) {
    if (t.stack.base != nullptr) free_stacks_.push_back(t.stack);
    t.stack = fiber::Stack{};
  }

  struct alignas(16) Chunk {
    unsigned char bytes[16];
  };

  std::vector<ThreadState> threads_;
  std::vector<int> ready_, next_;
  std::vector<int> warp_order_, lanes_;  // scratch of run_warp_by_warp
  std::vector<std::vector<WarpGroup>> groups_;
  std::vector<unsigned> exists_;  // per warp: the lanes this block has
  std::vector<fiber::Stack> free_stacks_;
  std::vector<Chunk> shared_;
  size_t shared_bytes_ = 0;
  fiber::Context host_;
  ThreadState* running_ = nullptr;
  detail::KernelBody body_ = nullptr;
  void* body_ctx_ = nullptr;
  std::string error_;
  uint64_t rng_ = 0;
};

BlockRunner& runner() {
  thread_local std::unique_ptr<BlockRunner> r(new BlockRunner());
  return *r;
}

BlockRunner& active() {
  if (t_active == nullptr) {
    std::fprintf(stderr, "CUDA emulator: a device built-in was called outside a kernel\n");
    std::abort();
  }
  return *t_active;
}

int host_threads(int64_t blocks) {
  int n = 1;
#if defined(_OPENMP)
  if (!omp_in_parallel()) n = omp_get_max_threads();
#endif
  n = static_cast<int>(env_u64("PYENGINE_EMU_THREADS", static_cast<uint64_t>(n)));
  if (n < 1) n = 1;
  return static_cast<int>(std::min<int64_t>(n, blocks));
}

void check_configuration(dim3 grid, dim3 block, size_t shared_bytes) {
  std::string why;
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0)
    why = "a dimension is 0";
  else if (block.x > 1024 || block.y > 1024 || block.z > 64 || threads > 1024)
    why = "more than 1024 threads per block, or a block dimension above (1024, 1024, 64)";
  else if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    why = "a grid dimension above (2^31 - 1, 65535, 65535)";
  else if (shared_bytes > 48 * 1024)
    why = "more than 48 KiB of dynamic shared memory (needs cudaFuncSetAttribute on a GPU)";
  if (!why.empty())
    throw std::runtime_error("CUDA emulator: invalid launch configuration (grid " +
                             describe(grid) + ", block " + describe(block) + ", " +
                             std::to_string(shared_bytes) + " bytes of shared memory): " + why +
                             " [cudaErrorInvalidConfiguration on a GPU]");
}

}  // namespace

void syncthreads() { active().syncthreads(); }
namespace detail {
void kernel_error(const char* message) { active().kernel_error(message); }
}  // namespace detail
unsigned active_mask() { return active().active_mask(); }
void* dynamic_shared_memory() { return active().shared_memory(); }
void set_seed(uint64_t seed) { g_seed.store(seed); }
uint64_t get_seed() { return g_seed.load(); }

namespace detail {

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int param, int width) {
  return active().warp_collective(op, mask, bits, param, width);
}

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, KernelBody body, void* ctx) {
  check_configuration(grid, block, shared_bytes);
  const int64_t blocks = static_cast<int64_t>(grid.x) * grid.y * grid.z;
  const int nthreads = host_threads(blocks);
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string first_error;
  auto run_one = [&](int64_t b) {
    if (failed.load(std::memory_order_relaxed)) return;
    std::string err;
    try {
      err = runner().run_block(b, grid, block, shared_bytes, body, ctx);
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) first_error = err;
    }
  };
#if defined(_OPENMP)
  if (nthreads > 1) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) run_one(b);
  } else {
    for (int64_t b = 0; b < blocks; ++b) run_one(b);
  }
#else
  (void)nthreads;
  for (int64_t b = 0; b < blocks; ++b) run_one(b);
#endif
  if (failed.load())
    throw std::runtime_error("CUDA emulator: kernel (grid " + describe(grid) + ", block " +
                             describe(block) + "): " + first_error);
}

}  // namespace detail
}  // namespace pyengine::emu
