"""What every numba kernel module shares: the jit decorators, a vectorisable exp, dtype-generic
constants, the thread count, row reductions and an index helper.

No shapes of its own; the kernel modules name theirs (N batch, C channels, H W input plane,
P Q output plane, ...).

Why a hand-written exp: numba lowers ``np.exp`` on a scalar to a libm call per element, which
LLVM cannot vectorise; a softmax written with it ran about 3x slower than numpy_ref (45 ms vs
16 ms on 4096 x 1000 float32), whose ``np.exp`` is SIMD. :func:`fast_exp` is the textbook range
reduction ``t = n ln2 + r`` with a Taylor polynomial for ``exp(r)``, written branch-free so
that LLVM vectorises the loops that call it; measured within 1 ulp of the correctly rounded
result in float32 and float64 (tests/test_numba_backend.py checks 2).
"""
from __future__ import annotations

import functools
from decimal import Decimal, getcontext

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from ... import threads

# cache=True: compiled kernels persist on disk (beside the sources, or in numba's user-wide
# cache when that is read-only), so only the first process on a machine pays the compile time.
# error_model='numpy': a float division by zero gives inf/NaN as in numpy instead of raising,
# and no zero test is emitted in the inner loops. nogil: the GIL is released while a kernel runs.
# fastmath stays off: reassociation would change results between runs of a vectorised loop
# with its tail, and the exp below relies on exact IEEE rounding in its range reduction.
jit = functools.partial(numba.njit, cache=True, error_model="numpy", nogil=True)
pjit = functools.partial(numba.njit, cache=True, error_model="numpy", nogil=True, parallel=True)

# Work items per parallel chunk in the flat element-wise kernels: big enough to amortise the
# scheduling of a chunk, small enough that 2..64 threads all get some.
BLOCK = 16384


# -- threads -------------------------------------------------------------------------------
# Below this many array elements in a call, a kernel runs on the calling thread alone: waking
# the pool costs more than the work (and on a busy machine a descheduled worker makes the
# barrier wait for a whole time slice: measured 8 ms at the 90th percentile for a 1280-element
# relu). No kernel's result depends on its thread count, so this changes only the speed.
SMALL_WORK = 1 << 15


def sync_threads(work: int | None = None) -> None:
    """Make numba's thread count ``pyengine.threads.get_num_threads()`` (clamped to
    NUMBA_NUM_THREADS, the size of numba's pool) in the calling thread, or 1 when ``work``
    (array elements in the call) is under SMALL_WORK.

    numba's count is per calling thread, so every kernel entry checks it rather than trusting
    a value set once elsewhere.
    """
    n = max(1, min(threads.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if work is not None and work < SMALL_WORK:
        n = 1
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def beside_blas() -> None:
    """For an entry point that runs numpy's BLAS GEMMs between numba passes (the im2col
    convolutions, linear): numba's passes run on the calling thread and BLAS keeps the threads.

    OpenBLAS's workers spin for a while after each GEMM; a numba parallel region started in that
    window has a worker sharing a core with a spinning one, and its barrier waits for a time
    slice (two threads, ms, numba / numpy_ref conv forward: res_c4 15.7 / 11.9 with both pools,
    9.8 with numba on one thread; res_c5 22.0 / 12.6 -> 9.2; mnist_c2 8.0 / 11.3 -> 5.8).
    """
    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def threaded(fn):
    """Decorator of a backend entry point: runs :func:`sync_threads`, sized by the elements of
    the call's array arguments, before ``fn``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sync_threads(sum(a.size for a in args if isinstance(a, np.ndarray)))
        return fn(*args, **kwargs)
    return wrapper


# -- dtype-generic constants ---------------------------------------------------------------
def like(value, sample):
    """``value`` cast to the dtype of ``sample`` (an array or a scalar).

    Inside a kernel, a Python literal is float64 and would silently promote float32 arithmetic;
    ``like(0.5, x)`` keeps a float32 kernel in float32 and a float64 one in float64.
    """
    dtype = np.asarray(sample).dtype
    return dtype.type(value)


@overload(like, inline="always")
def _like_overload(value, sample):
    target = sample.dtype if isinstance(sample, types.Array) else sample

    def impl(value, sample):
        return target(value)
    return impl


# -- bit casts (for building powers of two) ------------------------------------------------
def _bitcast(name, src, dst):
    """An intrinsic ``name(x)``: the ``dst`` scalar whose bits are those of the ``src`` scalar x
    (same width)."""
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))
        return dst(src), codegen
    cast.__name__ = cast.__qualname__ = name
    return intrinsic(cast)


_f32_bits = _bitcast("_f32_bits", types.float32, types.int32)
_bits_f32 = _bitcast("_bits_f32", types.int32, types.float32)
_f64_bits = _bitcast("_f64_bits", types.float64, types.int64)
_bits_f64 = _bitcast("_bits_f64", types.int64, types.float64)


# -- exp -------------------------------------------------------------------------------------
def _ln2_split(bits: int) -> tuple[float, float]:
    """(hi, lo) with hi + lo = ln 2 to ~1e-40 and hi a multiple of 2**-bits, so that n * hi is
    exact for the |n| an exponent reduction meets (Cody and Waite's trick)."""
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    hi = Decimal(round(ln2 * 2 ** bits)) / Decimal(2 ** bits)
    return float(hi), float(ln2 - hi)


_LN2_HI32, _LN2_LO32 = _ln2_split(14)   # |n| <= 150: n * hi fits in float32's 24 bits
_LN2_HI64, _LN2_LO64 = _ln2_split(40)   # |n| <= 1080: n * hi fits in float64's 53 bits
_LOG2E = 1.4426950408889634
# Adding 1.5 * 2**(mantissa bits) rounds a float to an integer held in its low mantissa bits,
# which a bit cast then reads without a float-to-int conversion (AVX2 has none for int64).
_MAGIC32 = 1.5 * 2.0 ** 23
_MAGIC64 = 1.5 * 2.0 ** 52
_MAGIC32_BITS = int(np.array(_MAGIC32, np.float32).view(np.int32))
_MAGIC64_BITS = int(np.array(_MAGIC64, np.float64).view(np.int64))


@jit(fastmath={"contract"})
def _exp32(t):
    # Outside [-104, 89] exp rounds to 0 or overflows in float32; clamping keeps 2**n in range
    # and the final selects put the exact 0 / inf / NaN back.
    tc = t
    if not tc >= np.float32(-104.0):   # also catches NaN, so no NaN reaches the bit tricks
        tc = np.float32(-104.0)
    if tc > np.float32(89.0):
        tc = np.float32(89.0)
    k = tc * np.float32(_LOG2E) + np.float32(_MAGIC32)
    n = k - np.float32(_MAGIC32)                      # round(t / ln2) as a float
    ni = _f32_bits(k) - np.int32(_MAGIC32_BITS)       # ... and as an int
    r = (tc - n * np.float32(_LN2_HI32)) - n * np.float32(_LN2_LO32)   # |r| <= ln2 / 2
    # Taylor to degree 7: the remainder r**8/8! < 5e-9 relative, below float32's half ulp.
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    # 2**n as two factors, so that n down to -150 (denormal results) and up to 128 stay exact.
    n1 = ni >> np.int32(1)
    n2 = ni - n1
    y = p * _bits_f32((n1 + np.int32(127)) << np.int32(23)) \
        * _bits_f32((n2 + np.int32(127)) << np.int32(23))
    if t < np.float32(-104.0):
        y = np.float32(0.0)
    if t != t:
        y = t
    return y


@jit(fastmath={"contract"})
def _exp64(t):
    tc = t
    if not tc >= -746.0:
        tc = -746.0
    if tc > 710.0:
        tc = 710.0
    k = tc * _LOG2E + _MAGIC64
    n = k - _MAGIC64
    ni = _f64_bits(k) - np.int64(_MAGIC64_BITS)
    r = (tc - n * _LN2_HI64) - n * _LN2_LO64
    # Taylor to degree 13: the remainder r**14/14! < 5e-18 relative, below float64's half ulp.
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    n1 = ni >> np.int64(1)
    n2 = ni - n1
    y = p * _bits_f64((n1 + np.int64(1023)) << np.int64(52)) \
        * _bits_f64((n2 + np.int64(1023)) << np.int64(52))
    if t < -746.0:
        y = 0.0
    if t != t:
        y = t
    return y


def fast_exp(t):
    """exp(t) in t's own precision (float32 or float64), vectorisable inside numba loops.

    exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN. Outside numba it is ``np.exp``.
    """
    return np.exp(t)


@overload(fast_exp)
def _fast_exp_overload(t):
    if t == types.float32:
        return lambda t: _exp32(t)
    if t == types.float64:
        return lambda t: _exp64(t)
    return None


# -- tanh ------------------------------------------------------------------------------------
@jit(inline="always")
def _tanh32(x):
    # (1 - e) / (1 + e) with e = exp(-2|x|), in float64 so that the cancellation in 1 - e for
    # small |x| costs float64 digits, not float32 ones; below 4e-4, tanh x = x to float32
    # precision (the next term x**3/3 is under half an ulp). Inlined at numba level and free
    # of reassignments: LLVM would not inline it into loops (it holds the whole exp).
    a = abs(np.float64(x))
    e = _exp64(-2.0 * a)
    t = (1.0 - e) / (1.0 + e)
    keep = (a < 4e-4) | (x != x)
    return x if keep else np.float32(t if x >= np.float32(0.0) else -t)


def fast_tanh(x):
    """tanh(x) in x's precision. float32 goes through a vectorisable float64 formula (numba's
    np.tanh on float32 is a libm call per element, 40x slower than numpy here); float64 keeps
    libm's tanh, whose accuracy a float64 formula through exp would not match near 0."""
    return np.tanh(x)


@overload(fast_tanh, inline="always")
def _fast_tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    if x == types.float64:
        return lambda x: np.tanh(x)
    return None


# -- log (float64) ---------------------------------------------------------------------------
_SQRT2 = 1.4142135623730951
_TWO52 = 2.0 ** 52
_EXP_MASK = (1 << 52) - 1
_ONE_BITS = 1023 << 52


@jit(fastmath={"contract"})
def fast_log64(x):
    """log(x) of a float64, vectorisable (numba's np.log is a libm call per element, which
    made a column-wise log-softmax spend most of its time in log). x = 2**e * m with m in
    [sqrt(1/2), sqrt(2)); log m = 2 atanh(f), f = (m - 1)/(m + 1), |f| < 0.172, by its series to
    f**23 (remainder < 1e-18). log(0) = -inf, log(inf) = inf, NaN and x < 0 give NaN."""
    tiny = x < 2.2250738585072014e-308
    xs = x * _TWO52 if tiny else x                    # denormals: scale into the normal range
    bits = _f64_bits(xs)
    e = (bits >> np.int64(52)) - np.int64(1023)
    m = _bits_f64((bits & np.int64(_EXP_MASK)) | np.int64(_ONE_BITS))   # in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + np.int64(1) if big else e
    ef = _bits_f64(e + np.int64(_MAGIC64_BITS)) - _MAGIC64          # e as a float, exactly
    ef = ef - 52.0 if tiny else ef
    f = (m - 1.0) / (m + 1.0)
    z = f * f
    p = 1.0 / 23.0
    p = p * z + 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    y = ef * _LN2_HI64 + (2.0 * f + 2.0 * f * z * p + ef * _LN2_LO64)
    if x == 0.0:
        y = -np.inf
    if x == np.inf:
        y = x
    if not x >= 0.0:            # negative or NaN
        y = np.nan
    return y


# -- reductions with independent accumulators -----------------------------------------------
# Without fastmath LLVM may not reorder a float sum, so a one-accumulator loop runs at one add
# per FP-add latency. Eight independent partial results (fixed order, hence deterministic)
# give the out-of-order core eight chains to overlap.
@jit(inline="always")
def row_sum64(a, start, n):
    """float64 sum of a[start:start+n] (a 1-d array of any float dtype)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    j = start
    end = start + n
    while j + 8 <= end:
        s0 += a[j]
        s1 += a[j + 1]
        s2 += a[j + 2]
        s3 += a[j + 3]
        s4 += a[j + 4]
        s5 += a[j + 5]
        s6 += a[j + 6]
        s7 += a[j + 7]
        j += 8
    while j < end:
        s0 += a[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit(inline="always")
def row_dot64(a, b, start, n):
    """float64 sum of a[i] * b[i] (products in the arrays' dtype) over [start, start+n)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    j = start
    end = start + n
    while j + 8 <= end:
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        s4 += a[j + 4] * b[j + 4]
        s5 += a[j + 5] * b[j + 5]
        s6 += a[j + 6] * b[j + 6]
        s7 += a[j + 7] * b[j + 7]
        j += 8
    while j < end:
        s0 += a[j] * b[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit(inline="always")
def row_max(a, start, n):
    """Largest of a[start:start+n] (n >= 1), in a's dtype; NaNs are skipped unless a[start] is
    NaN. Callers that need NaN propagation get it downstream (exp(NaN - m) poisons the sum)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = a[start]
    j = start
    end = start + n
    while j + 8 <= end:
        if a[j] > m0:
            m0 = a[j]
        if a[j + 1] > m1:
            m1 = a[j + 1]
        if a[j + 2] > m2:
            m2 = a[j + 2]
        if a[j + 3] > m3:
            m3 = a[j + 3]
        if a[j + 4] > m4:
            m4 = a[j + 4]
        if a[j + 5] > m5:
            m5 = a[j + 5]
        if a[j + 6] > m6:
            m6 = a[j + 6]
        if a[j + 7] > m7:
            m7 = a[j + 7]
        j += 8
    while j < end:
        if a[j] > m0:
            m0 = a[j]
        j += 1
    for m in (m1, m2, m3, m4, m5, m6, m7):
        if m > m0:
            m0 = m
    return m0


# -- index helpers ---------------------------------------------------------------------------
@jit(inline="always")
def valid_range(out_len, stride, offset, size):
    """[lo, hi): the outputs q in [0, out_len) whose input position q*stride + offset lies in
    [0, size). Empty ranges come back as lo == hi."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = out_len
    last = size - 1 - offset          # q*stride <= last
    if last < 0:
        hi = 0
    elif last // stride + 1 < hi:
        hi = last // stride + 1
    if hi < lo:
        hi = lo
    return lo, hi
