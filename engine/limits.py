"""What the machine can do: thread counts, and the memory a model, a batch and a corpus will need.

Checked before anything is allocated, so a setting the machine cannot honour is one line naming the estimate,
never a crash or a swap storm. No torch import: the CLI checks these before loading it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.config import TrainConfig, describe_layers, embedding_width
from engine.errors import ConfigError
from engine.setting_kinds import SwitchKind

FLOAT_BYTES = 4
# The optimizer's state per weight, in tensors the weight's size (engine/optim.py, saved in a checkpoint): Adam's
# two moments; the book's SGD has no momentum, so none.
OPTIMIZER_SLOTS = {"adam": 2, "sgd": 0}
CHECKPOINT_ROOM = 2**20  # a checkpoint's settings, vocabulary, history and samples: at most this beside its tensors
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# Per character of the corpus kept: the text (up to 4 bytes a character in a Python str), the list of indices
# (a pointer each) and the index tensor (int64).
CORPUS_BYTES_PER_CHAR = 4 + 8 + 8


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity; a container's cpuset included)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int | None) -> None:
    """A torch thread count must be ≥ 1 and at most the usable cores: more threads than cores only make torch's
    threads wait for each other (and very large counts crash OpenMP)."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a whole number ≥ 1, got {threads!r}")
    cores = usable_cpus()
    if threads > cores:
        raise ConfigError(
            f"threads must be at most {cores}, the CPU cores this process may use (more threads than cores only "
            f"slow torch down), got {threads:,}"
        )


def parameter_count(
    cell: str, vocab_size: int, hidden: int, layers: int, embed: int = 0, tie: bool = False
) -> int:
    """Weights and biases of the recurrent layers and the dense output layer, and of the input embedding when
    there is one (--embed; --tie with --embed 0 makes one as wide as the hidden state, engine.model.CharRNN). Tied,
    the output layer reuses the embedding's weights through a projection when the widths differ (TiedDense)."""
    gates = GATES[cell]
    width = embedding_width(embed, hidden, tie)  # 0: the book's one-hot input
    count = vocab_size * width
    for layer in range(layers):
        inputs = (width or vocab_size) if layer == 0 else hidden
        count += gates * hidden * (inputs + hidden + 2)
    if tie:
        return count + (hidden * width if width != hidden else 0) + vocab_size
    return count + hidden * vocab_size + vocab_size


def config_parameter_count(config: TrainConfig, vocab_size: int) -> int:
    """parameter_count of a run of config."""
    tie = SwitchKind.is_on(config.tie)
    return parameter_count(config.cell, vocab_size, config.hidden, config.layers, config.embed, tie)


def checkpoint_bytes(config: TrainConfig, vocab_size: int) -> int:
    """About what a checkpoint of a run of config takes on disk, at most: its weights and the optimizer's state
    (OPTIMIZER_SLOTS), float32, and room for its settings, vocabulary, history and samples."""
    params = config_parameter_count(config, vocab_size)
    return params * FLOAT_BYTES * (1 + OPTIMIZER_SLOTS[config.optimizer]) + CHECKPOINT_ROOM


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # parameters, gradients and optimizer state, plus a checkpoint's copies while it is saved
    activations: int  # one batch: what BPTT keeps, its gradients, and the output layer's probabilities
    corpus: int

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.corpus


def estimate_memory(config: TrainConfig, vocab_size: int, num_chars: int) -> MemoryEstimate:
    """An upper-side estimate of what training config allocates (bytes), from the sizes alone."""
    params = config_parameter_count(config, vocab_size)
    slots = OPTIMIZER_SLOTS[config.optimizer]
    # Live: weights, gradients, optimizer state. Saving adds a copy of weights and state, and their serialised form.
    weights = params * FLOAT_BYTES * ((2 + slots) + 2 * (1 + slots))
    rows = config.num_steps * config.batch_size
    gates = GATES[config.cell]
    per_layer = rows * config.hidden * (3 * gates + 4)  # projections, outputs, saved gate values (engine.kernels)
    activations = 2 * per_layer * config.layers * FLOAT_BYTES  # forward values and their gradients
    activations += 3 * rows * vocab_size * FLOAT_BYTES  # the output's probabilities, their gradient, the logits
    return MemoryEstimate(weights, activations, num_chars * CORPUS_BYTES_PER_CHAR)


MEMORY_SHARE_ENV = "RNN_TUI_MEMORY_SHARE"  # bytes this whole process may use (a served session's seat); unset: no share


def resident_memory() -> int:
    """Bytes of this process in memory now (its resident set)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def available_memory() -> int | None:
    """Bytes this process can still allocate: the system's MemAvailable, or a cgroup limit's headroom if lower, or
    what is left of the process's share (MEMORY_SHARE_ENV) if lower still."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            headroom = int(limit) - int(used)
            available = headroom if available is None else min(available, headroom)
    except (OSError, ValueError):
        pass
    share = os.environ.get(MEMORY_SHARE_ENV)
    if share and share.isdigit():
        headroom = max(0, int(share) - resident_memory())
        available = headroom if available is None else min(available, headroom)
    return available


def size_text(size: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}" if size < 10 * scale else f"{size / scale:,.0f} {unit}"
    return f"{size / 1024:,.0f} KiB"


def check_memory(config: TrainConfig, vocab_size: int, num_chars: int, available: int | None = None) -> MemoryEstimate:
    """Refuse settings whose estimated memory exceeds what is available (CPU memory; the device's for CUDA)."""
    estimate = estimate_memory(config, vocab_size, num_chars)
    if available is None:
        available = available_memory()
    if available is not None and estimate.total > available:
        model = f"{config.cell} of {config.hidden:,} hidden, {describe_layers(config.layers)}"
        batch = f"batch-size {config.batch_size} × num-steps {config.num_steps}"
        parts = (
            f"weights and optimizer {size_text(estimate.weights)}, one batch {size_text(estimate.activations)}, "
            f"corpus {size_text(estimate.corpus)}"
        )
        raise ConfigError(
            f"{model}, with {batch} and a vocabulary of {vocab_size:,}, needs about {size_text(estimate.total)} "
            f"({parts}); {size_text(available)} is available: lower hidden, layers, batch-size or num-steps"
        )
    return estimate
