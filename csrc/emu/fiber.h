// Fibers of the CUDA emulator: stacks and the switch between the scheduler and a CUDA thread.
//
// On x86-64 a switch is a few instructions of our own (csrc/emu/fiber.cpp): glibc's
// swapcontext makes a sigprocmask system call on every switch, and the emulator switches twice
// per CUDA thread and barrier. Elsewhere, or with PYENGINE_EMU_UCONTEXT defined, ucontext.
// Under AddressSanitizer every switch is announced to it (__sanitizer_*_switch_fiber), so it
// knows which stack is live and reports overflows and use-after-return on fiber stacks.
//
// Shape letters: none.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) && !defined(PYENGINE_EMU_UCONTEXT)
#define PYENGINE_EMU_UCONTEXT 1
#endif
#if defined(PYENGINE_EMU_UCONTEXT)
#include <ucontext.h>
#endif

namespace pyengine::emu::fiber {

// The usable region [base, base + size) of a stack, with an inaccessible guard page below base
// so that an overflow faults instead of overwriting the neighbouring stack.
struct Stack {
  char* base = nullptr;
  size_t size = 0;
};

Stack allocate_stack(size_t size);
void free_stack(Stack stack);
// Before a stack is reused by another fiber (clears AddressSanitizer's poison of old frames).
void prepare_stack(Stack stack);

struct Context {
  void* sp = nullptr;           // saved stack pointer (own switch)
  void* asan_fake = nullptr;    // AddressSanitizer's fake stack of this context while away
  const void* bottom = nullptr; // the stack this context runs on (for AddressSanitizer)
  size_t size = 0;
#if defined(PYENGINE_EMU_UCONTEXT)
  ucontext_t uc;
#endif
};

// Prepares `ctx` to start `entry` on `stack` at its first switch_to. entry must never return:
// it ends by switching away for good (switch_to with exiting = true).
void make_context(Context* ctx, Stack stack, void (*entry)());

// Saves the running context into `from` and resumes `to`. `exiting`: `from` is never resumed
// (its stack is about to be reused), which AddressSanitizer needs to know.
void switch_to(Context* from, Context* to, bool exiting = false);

// First thing a fiber's entry function must call: completes the switch that started it
// (AddressSanitizer bookkeeping) and records the bounds of the stack it came from in `from`.
void on_fiber_start(Context* from);

}  // namespace pyengine::emu::fiber
