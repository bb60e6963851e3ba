"""Checkpoints: weights, optimizer, vocabulary, config, history and RNG state, as plain data.

Loading uses torch.load(weights_only=True), which refuses anything but tensors and plain
containers, so a checkpoint can never run code. Writes go to a temporary file that is renamed over
the target (engine.outputs.write_atomically), so an interrupted or failed save leaves the previous
checkpoint whole and no temporary file; a failed one raises OutputError in the user's terms.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.config import TrainConfig, describe_layers
from engine.data.corpus import Vocab
from engine.errors import CheckpointError, ConfigError, first_line
from engine.events import EpochEnd
from engine.model import CharRNN, State, model_for
from engine.outputs import CHECKPOINT_FORMAT, write_atomically
from engine.timeline import SampleRecord

FORMAT = CHECKPOINT_FORMAT
VERSION = 1


@dataclass
class EpochProgress:
    """How far an unfinished epoch got: what finishing it exactly as if uninterrupted needs."""

    batches: int  # batches of the epoch trained
    loss_sum: float  # Σ loss × characters over those batches (the book's l_sum)
    chars: int
    seconds: float
    shuffle_state: torch.Tensor  # the shuffle generator as the epoch began: random sampling redraws its order
    # The gradient norms of those batches (EpochEnd.grad_norm): Σ and max before clipping, steps clipped, steps.
    # A checkpoint from before they were kept reads zeros: the epoch's figures then cover the batches after it.
    grad_sum: float = 0.0
    grad_max: float = 0.0
    clipped: int = 0
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochProgress:
        state = data["shuffle_state"]
        if not isinstance(state, torch.Tensor) or int(data["batches"]) < 0:
            raise ValueError("bad epoch progress")
        grads = (
            float(data.get("grad_sum", 0.0)),
            float(data.get("grad_max", 0.0)),
            int(data.get("clipped", 0)),
            int(data.get("steps", 0)),
        )
        return cls(
            int(data["batches"]), float(data["loss_sum"]), int(data["chars"]), float(data["seconds"]), state, *grads
        )


def describe_position(epoch: int, progress: EpochProgress | None, batches_per_epoch: int | None = None) -> str:
    """Where a run stands, as a learner counts: 'epoch 12' (12 done), or 'batch 3 of 8 of epoch 13' in the middle
    of epoch 13 (12 done and 3 batches of the next; all 8 of them: still epoch 13, its end not yet measured)."""
    if progress is None or progress.batches == 0:
        return f"epoch {epoch}"
    of = f" of {batches_per_epoch}" if batches_per_epoch else ""
    return f"batch {progress.batches}{of} of epoch {epoch + 1}"


@dataclass
class Checkpoint:
    config: TrainConfig
    vocab: Vocab
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    epoch: int
    history: list[EpochEnd]
    seed: int
    carried: State | None
    rng: dict[str, torch.Tensor]
    corpus: str
    progress: EpochProgress | None = None  # saved mid-epoch: the batches of epoch + 1 already trained
    timeline: list[SampleRecord] = field(default_factory=list)  # every report's samples (engine/timeline.py)

    def position(self, batches_per_epoch: int | None = None) -> str:
        return describe_position(self.epoch, self.progress, batches_per_epoch)

    def build_model(self, device: torch.device | str = "cpu") -> CharRNN:
        config = self.config
        model = model_for(config, len(self.vocab))
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint weights do not fit its own settings: {first_line(exc)}") from exc
        return model.to(device).eval()


def check_vocab(checkpoint_vocab: Vocab, vocab: Vocab) -> None:
    """A checkpoint continues only on the corpus it was trained on: the same characters at the same indices."""
    if checkpoint_vocab != vocab:
        raise CheckpointError(
            f"the checkpoint's vocabulary ({len(checkpoint_vocab):,} characters) differs from "
            f"this corpus's ({len(vocab):,}): resume with the corpus it was trained on"
        )


def check_progress(checkpoint: Checkpoint, batches_per_epoch: int) -> None:
    """A checkpoint saved mid-epoch must fit the epochs of the corpus it resumes on."""
    if checkpoint.progress is not None and checkpoint.progress.batches > batches_per_epoch:
        raise CheckpointError(
            f"the checkpoint stopped after batch {checkpoint.progress.batches} of an epoch, but an epoch here "
            f"has {batches_per_epoch} batches: resume with the corpus it was trained on"
        )


def check_shapes(checkpoint: Checkpoint) -> None:
    """Raise CheckpointError if the weights do not fit the checkpoint's own settings, without building a model.

    The model is laid out on the meta device: no memory, and no draw from torch's global random generator
    (building a real one would shift the draws of a run training meanwhile).
    """
    config = checkpoint.config
    with torch.device("meta"):
        expected = model_for(config, len(checkpoint.vocab))
    shapes = {name: tuple(tensor.shape) for name, tensor in expected.state_dict().items()}
    given = checkpoint.model_state
    for name, shape in shapes.items():
        tensor = given.get(name)
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            found = "missing" if not isinstance(tensor, torch.Tensor) else f"shape {tuple(tensor.shape)}"
            raise CheckpointError(
                f"checkpoint weights do not fit its own settings: {name} is {found}, "
                f"a {config.cell} of {config.hidden} hidden, {describe_layers(config.layers)} needs {shape}"
            )
    extra = sorted(set(given) - set(shapes))
    if extra:
        raise CheckpointError(f"checkpoint weights do not fit its own settings: unexpected {', '.join(extra)}")


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    path = Path(path)
    carried = checkpoint.carried
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": checkpoint.config.to_dict(),
        "vocab": list(checkpoint.vocab.idx_to_char),
        "model": checkpoint.model_state,
        "optimizer": checkpoint.optimizer_state,
        "epoch": checkpoint.epoch,
        "history": [asdict(e) for e in checkpoint.history],
        "seed": checkpoint.seed,
        "carried": list(carried) if isinstance(carried, tuple) else carried,
        "rng": checkpoint.rng,
        "corpus": checkpoint.corpus,
        "progress": checkpoint.progress.to_dict() if checkpoint.progress is not None else None,
        "timeline": [record.to_dict() for record in checkpoint.timeline],
    }
    buffer = io.BytesIO()  # serialised in memory first: a failing write is then a plain OSError, said plainly
    torch.save(payload, buffer)
    write_atomically(path, buffer.getbuffer())


def _looks_like_pickle(path: Path, error: pickle.UnpicklingError) -> bool:
    """Whether torch refused a real pickle (code, foreign objects) rather than choked on random bytes.

    A torch.save zip names the global it refused. A bare pickle is walked opcode by opcode (pickletools
    reads, never runs): a real one ends with STOP on its last byte, which random bytes practically never do
    (one file in 256 starts with the PROTO byte, so that alone was not enough).
    """
    if "GLOBAL" in str(error):
        return True
    try:
        with path.open("rb") as file:
            ends_at = -1
            for opcode, _argument, _position in pickletools.genops(file):
                if opcode.name == "STOP":
                    ends_at = file.tell()
            return ends_at == path.stat().st_size
    except Exception:  # an unknown opcode or a premature end: not a pickle
        return False


def load(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the error below says it all
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_like_pickle(path, exc):
            raise CheckpointError(f"{path} is not a readable rnn-tui checkpoint (damaged or truncated)") from exc
        raise CheckpointError(
            f"refused to load {path}: it holds objects other than plain data (loading it could run code)"
        ) from exc
    except Exception as exc:  # garbage bytes raise anything from KeyError to RuntimeError
        raise CheckpointError(f"{path} is not a readable rnn-tui checkpoint (damaged or truncated)") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnn-tui checkpoint")
    try:
        carried = payload["carried"]
        history = [EpochEnd(**e) for e in payload["history"]]
        progress = payload.get("progress")  # absent from checkpoints saved before mid-epoch resume existed
        timeline = payload.get("timeline", [])  # absent from checkpoints saved before the sample timeline existed
        return Checkpoint(
            config=TrainConfig.from_dict(payload["config"]),
            vocab=Vocab(tuple(payload["vocab"])),
            model_state=payload["model"],
            optimizer_state=payload["optimizer"],
            epoch=int(payload["epoch"]),
            history=history,
            seed=int(payload["seed"]),
            carried=tuple(carried) if isinstance(carried, list) else carried,
            rng=payload["rng"],
            corpus=str(payload["corpus"]),
            progress=EpochProgress.from_dict(progress) if progress is not None else None,
            timeline=[SampleRecord.from_dict(record) for record in timeline],
        )
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path} is an incomplete or damaged rnn-tui checkpoint ({exc})") from exc
