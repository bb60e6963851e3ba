"""The arithmetic training uses: float32 (the book's), or bfloat16 output-layer products where the hardware has them.

`bf16` runs the output layer's three products per batch (the logits, the gradient with respect to the hidden states,
the gradient with respect to W) in bfloat16, with float32 accumulation inside the product, float32 softmax and
float32 master weights (engine/kernels.py, LinearCrossEntropy). Those products are most of a batch for the book's
1,027-character vocabulary (docs/performance.md); the recurrence, the input lookup and the optimizer stay float32,
where a batch's time is a chain of small products that bfloat16 barely speeds up and its rounding would compound.

Native support is detected once per trainer: on the CPU the avx512_bf16 or amx_bf16 flag (AVX512-BF16 on Intel
Cooper Lake / AMD Zen 4 and later, AMX on Sapphire Rapids and later), or on 64-bit Arm the bf16 feature (FEAT_BF16:
Neoverse V1/N2, Graviton 3 and later; Linux lists it under "Features"). torch's own checks do not say it:
torch.backends.cpu.get_cpu_capability() names the vector width (AVX512, SVE256), and oneDNN's bf16 check is true on
any AVX-512 (BW/VL/DQ) CPU, where bfloat16 is converted in software. On CUDA compute capability 8.0 (Ampere) or
later, which also multiplies float32 as TF32. Without it torch still computes bfloat16, but by converting in
software, slower than float32: `auto` then picks fp32, and an explicit `bf16` is refused in one line.

On CUDA, bf16 also lets the float32 products that remain (the recurrence and its W_hh gradient) run as TF32, for
the duration of the training step only (TF32 is a process-wide switch; a float32 run after a bf16 one in the same
process must stay float32). torch.autocast is not used: it does not reach the hand-written backward passes
(engine/kernels.py), where two of the three products are, nor the recurrences' in-place products, so it would cast
the forward logits alone; the explicit casts do all three, the same way on every device.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.config import PRECISIONS
from engine.errors import ConfigError
from engine.events import HINT_PREFIX

# "1" or "0": act as if the CPU had (or lacked) native bfloat16, whatever it has. For tests and benchmarks that must
# see both answers on one machine; it never makes bfloat16 faster.
NATIVE_ENV = "RNN_TUI_BF16_NATIVE"
# Any one multiplies bfloat16 in hardware: x86's two flags, and aarch64's "bf16" (FEAT_BF16, on its Features line).
CPU_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
CUDA_NATIVE = (8, 0)  # Ampere: bfloat16 tensor cores and TF32


@dataclass(frozen=True)
class Support:
    """What a device multiplies natively, and in a few words why we think so (for the start-up line)."""

    bf16: bool
    tf32: bool  # CUDA only: float32 products as TF32
    why: str


@dataclass(frozen=True)
class Precision:
    """The arithmetic chosen for a run."""

    requested: str  # the setting: fp32, bf16 or auto
    name: str  # what training uses: fp32 or bf16
    why: str  # how it was chosen, e.g. "auto: avx512_bf16 on this CPU"
    tf32: bool = False  # CUDA: the step's remaining float32 products as TF32
    # The output layer's products kept in float32 even in bf16 (engine/kernels.py, LinearCrossEntropy: "logits",
    # "grad_hidden", "grad_weight"). choose() keeps none; bench/precision_quality.py --keep measures variants.
    keep_fp32: frozenset[str] = frozenset()
    # One line for an explicit bf16 where it misses the quality guard (GUARD_MISSED); the front ends show it.
    warning: str = ""

    @property
    def output_dtype(self) -> torch.dtype | None:
        """The dtype of the output layer's products; None keeps float32 (the unchanged path)."""
        return torch.bfloat16 if self.name == "bf16" else None

    def describe(self) -> str:
        """'fp32', or 'bf16 (auto: avx512_bf16 on this CPU)': the start-up line's words."""
        return f"{self.name} ({self.why})" if self.why else self.name


# Cells whose bf16 training misses the quality guard (bench/precision_quality.py: over three seeds, training
# perplexity at 250 epochs within 2 % of fp32's, best held-out within 3 %). auto keeps them in fp32 even where
# bfloat16 is native; an explicit bf16 still trains them, with a one-line warning. The GRU: +7 % median, +13 % worst
# (docs/performance.md, Precision, where a GRU in fp32 with one weight one float32 step off misses the same guard).
GUARD_MISSED = ("gru",)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere (macOS, Windows: no native bf16 is assumed)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_support(flags: set[str] | None = None, env: str | None = None) -> Support:
    """Native bfloat16 on this CPU: from its flags, or as NATIVE_ENV (env) says when that is set."""
    env = os.environ.get(NATIVE_ENV) if env is None else env
    if env in ("0", "1"):
        return Support(env == "1", False, f"{NATIVE_ENV}={env} says {'native' if env == '1' else 'no'} bfloat16")
    found = [flag for flag in CPU_FLAGS if flag in (cpu_flags() if flags is None else flags)]
    if found:
        return Support(True, False, f"{'Arm bf16' if found[0] == 'bf16' else found[0]} on this CPU")
    return Support(False, False, "this CPU has no avx512_bf16, amx_bf16 or Arm bf16")


def cuda_support(capability: tuple[int, int]) -> Support:
    """Native bfloat16 and TF32 on a GPU of this compute capability (torch.cuda.get_device_capability)."""
    native = capability >= CUDA_NATIVE
    major, minor = capability
    if native:
        return Support(True, True, f"CUDA capability {major}.{minor}")
    return Support(False, False, f"CUDA capability {major}.{minor} < 8.0 has no native bfloat16")


def detect(device: torch.device) -> Support:
    """What `device` multiplies natively. MPS is treated as having no bfloat16 (never measured here)."""
    if device.type == "cpu":
        return cpu_support()
    if device.type == "cuda":
        return cuda_support(torch.cuda.get_device_capability(device))
    return Support(False, False, f"rnn-tui uses bfloat16 only on CPUs and CUDA GPUs that have it, not on {device.type}")


def choose(requested: str, device: torch.device, support: Support | None = None, cell: str = "rnn") -> Precision:
    """The precision a run of `cell` on `device` uses: fp32 as asked; bf16 only where native (else ConfigError, one
    line), with a warning for a cell in GUARD_MISSED; auto: bf16 where native, unless the cell is in GUARD_MISSED,
    else fp32. support: what the device has (None: detect it)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"«precision» must be one of {', '.join(PRECISIONS)}; got {requested!r}")
    if requested == "fp32":
        return Precision("fp32", "fp32", "")
    support = detect(device) if support is None else support
    missed = cell in GUARD_MISSED
    if requested == "auto":
        if support.bf16 and missed:
            return Precision("auto", "fp32", f"auto: bf16 misses the quality guard for the {cell.upper()}")
        name = "bf16" if support.bf16 else "fp32"
        return Precision("auto", name, f"auto: {support.why}", tf32=support.tf32 and name == "bf16")
    if not support.bf16:
        raise ConfigError(
            f"«precision» bf16 on {device.type}: {support.why}; without native bfloat16 it would be slower than fp32, "
            "so it is refused: use fp32 or auto"
        )
    warning = f"warning: bf16 misses the quality guard for the {cell.upper()} (docs/performance.md)" if missed else ""
    return Precision("bf16", "bf16", support.why, tf32=support.tf32, warning=warning)


@contextlib.contextmanager
def step_context(precision: Precision, device: torch.device) -> Iterator[None]:
    """Around one training step (forward and backward): TF32 float32 products on CUDA when chosen, restored after."""
    if not (precision.tf32 and device.type == "cuda"):
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = True
    try:
        yield
    finally:
        matmul.allow_tf32 = before


# The bf16 hint states a figure only when the timings agree: the middle half of the paired ratios within this factor.
STEADY_SPREAD = 1.5


def steady_median(ratios: list[float], spread: float = STEADY_SPREAD) -> float | None:
    """The median of ratios when their middle half lies within spread (max / min); None when it does not (a busy
    machine: no figure is better than one that changes from run to run)."""
    if not ratios:
        return None
    ordered = sorted(ratios)
    n = len(ordered)
    low, high = ordered[n // 4], ordered[(3 * n - 1) // 4]
    if low <= 0 or high / low > spread:
        return None
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def output_layer_speedup(vocab: int, hidden: int, rows: int, repeats: int = 9) -> float | None:
    """How many times as fast the output layer's three products run in bfloat16 as in float32 on this CPU, measured
    now at a run's sizes: in each of `repeats` rounds after a warm-up one float32 and one bfloat16 timing, back to
    back, so that a busy moment of the machine falls on both; the median of the rounds' ratios (steady_median), or
    None when they disagree. The best of each dtype over the rounds gave 2.1×, 3.8× and 6.3× on one machine, run to
    run; the paired median is steadier. About 0.3 s for the book's run."""

    draws = torch.Generator().manual_seed(0)  # never torch's global one: the run's dropout masks must not shift
    operands = {}
    for dtype in (torch.float32, torch.bfloat16):
        weight = torch.randn(vocab, hidden, generator=draws).to(dtype)
        states = torch.randn(rows, hidden, generator=draws).to(dtype)
        grad = torch.randn(vocab, rows, generator=draws).to(dtype)
        operands[dtype] = (weight, states, grad)
    ratios = []
    for round_ in range(repeats + 1):
        took = {}
        for dtype, (weight, states, grad) in operands.items():
            started = time.perf_counter()
            torch.mm(weight, states.t()), grad.t() @ weight, grad @ states
            took[dtype] = time.perf_counter() - started
        if round_ and took[torch.bfloat16] > 0:  # the first round warms up
            ratios.append(took[torch.float32] / took[torch.bfloat16])
    return steady_median(ratios)


def fp32_hint(
    precision: Precision,
    device: torch.device,
    vocab: int,
    hidden: int,
    rows: int,
    short: bool = False,
    cell: str = "rnn",
) -> str | None:
    """One line for a CPU run in fp32 where bfloat16 is native: how much faster the output layer would be, measured
    on this machine now. None elsewhere (bf16 or auto chosen, no native bfloat16, not the CPU, or a cell whose bf16
    misses the quality guard). short: the app's
    words (its notes and Status fit 80 columns), naming the setting as «precision» for the front end to word."""
    if precision.requested != "fp32" or device.type != "cpu" or cell in GUARD_MISSED:
        return None
    support = cpu_support()
    if not support.bf16:
        return None
    speedup = output_layer_speedup(vocab, hidden, rows)
    if short:  # one line of the Status panel
        faster = f"{speedup:.1f}× faster" if speedup is not None else "may be faster"
        return f"{HINT_PREFIX}«precision» bf16: output layer {faster}"
    how_fast = (
        f"the output layer's products ran {speedup:.1f}× as fast in bf16 just now (median of 9 timings)"
        if speedup is not None
        else "the output layer's products may run faster in bf16 (the machine was too busy just now to time it)"
    )
    return (
        f"{HINT_PREFIX}bfloat16 is native here ({support.why}): {how_fast}; --precision bf16 (or auto) uses them, "
        "with float32 weights (docs/performance.md)"
    )
