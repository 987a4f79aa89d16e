// Fibers of the CUDA emulator: guarded stacks and the context switch (see fiber.h).
//
// Shape letters: none.
#include "emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__SANITIZE_ADDRESS__)
#define PYENGINE_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PYENGINE_EMU_ASAN 1
#endif
#endif
#if defined(PYENGINE_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(PYENGINE_EMU_UCONTEXT)
// void pyengine_emu_switch(void** save_sp, void* load_sp): pushes the callee-saved registers
// of the System V ABI and the SSE/x87 control words on the running stack, stores the stack
// pointer in *save_sp, loads load_sp and pops the same frame from there. A new fiber's stack
// is prepared by make_context so that this pop "returns" into its entry function.
asm(R"(
    .pushsection .text
    .p2align 4
    .globl pyengine_emu_switch
    .hidden pyengine_emu_switch
    .type pyengine_emu_switch, @function
pyengine_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size pyengine_emu_switch, .-pyengine_emu_switch
    .popsection
)");
extern "C" void pyengine_emu_switch(void** save_sp, void* load_sp);
#endif

namespace pyengine::emu::fiber {

namespace {
size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}
}  // namespace

Stack allocate_stack(size_t size) {
  const size_t page = page_size();
  size = (size + page - 1) / page * page;
  // MAP_NORESERVE: only the pages a fiber touches cost memory; most use one or two.
  void* p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (mprotect(p, page, PROT_NONE) != 0) {
    munmap(p, size + page);
    throw std::runtime_error("CUDA emulator: cannot protect the guard page of a fiber stack");
  }
  return Stack{static_cast<char*>(p) + page, size};
}

void prepare_stack(Stack stack) {
#if defined(PYENGINE_EMU_ASAN)
  // A reused stack may still carry the shadow poison of frames of an abandoned fiber.
  ASAN_UNPOISON_MEMORY_REGION(stack.base, stack.size);
#else
  (void)stack;
#endif
}

void free_stack(Stack stack) {
  if (stack.base != nullptr) munmap(stack.base - page_size(), stack.size + page_size());
}

void make_context(Context* ctx, Stack stack, void (*entry)()) {
  ctx->bottom = stack.base;
  ctx->size = stack.size;
  ctx->asan_fake = nullptr;
#if defined(PYENGINE_EMU_UCONTEXT)
  if (getcontext(&ctx->uc) != 0)
    throw std::runtime_error("CUDA emulator: getcontext failed");
  ctx->uc.uc_stack.ss_sp = stack.base;
  ctx->uc.uc_stack.ss_size = stack.size;
  ctx->uc.uc_link = nullptr;
  makecontext(&ctx->uc, entry, 0);
#else
  // From the top: a zero "return address" for entry (so that at its first instruction the
  // stack is aligned as after a call: rsp % 16 == 8), entry's address for the final `ret`,
  // six zeroed callee-saved registers and the control words (MXCSR 0x1f80, x87 0x037f: the
  // ABI's defaults).
  auto top = reinterpret_cast<uintptr_t>(stack.base + stack.size) & ~uintptr_t(15);
  auto* slot = reinterpret_cast<uint64_t*>(top);
  *--slot = 0;
  *--slot = reinterpret_cast<uint64_t>(entry);
  for (int k = 0; k < 6; ++k) *--slot = 0;
  *--slot = 0x037f00001f80ull;  // low 4 bytes: MXCSR, next 2 bytes: x87 control word
  ctx->sp = slot;
#endif
}

void switch_to(Context* from, Context* to, bool exiting) {
#if defined(PYENGINE_EMU_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &from->asan_fake, to->bottom, to->size);
#else
  (void)exiting;
#endif
#if defined(PYENGINE_EMU_UCONTEXT)
  if (swapcontext(&from->uc, &to->uc) != 0) std::abort();
#else
  pyengine_emu_switch(&from->sp, to->sp);
#endif
#if defined(PYENGINE_EMU_ASAN)
  __sanitizer_finish_switch_fiber(from->asan_fake, nullptr, nullptr);
#endif
}

void on_fiber_start(Context* from) {
#if defined(PYENGINE_EMU_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  from->bottom = bottom;
  from->size = size;
#else
  (void)from;
#endif
}

}  // namespace pyengine::emu::fiber
