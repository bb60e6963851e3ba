"""The sample timeline: every report's samples, kept with their epoch, the live settings then, and the sampling
generator's state before they were drawn, so a checkpoint saved at that epoch regenerates them byte for byte.

The trainer draws its report samples through draw_samples and keeps a SampleRecord per report (Trainer.timeline);
checkpoints save the records (engine.checkpoint: a checkpoint from before the timeline loads with none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine.config import LIVE_SETTINGS, SettingValue, TrainConfig
from engine.data.corpus import Vocab
from engine.errors import CheckpointError
from engine.generate import generate
from engine.model import CharRNN

Sample = tuple[str, str]  # (prefix as read, prefix + generated text)


@dataclass(frozen=True)
class SampleRecord:
    """One report's samples. settings: every live setting (engine.config.LIVE_SETTINGS) as it was then; generator:
    the sampling generator's state just before the first sample was drawn (greedy samples do not draw from it)."""

    epoch: int
    samples: tuple[Sample, ...]
    settings: tuple[tuple[str, SettingValue], ...]
    generator: torch.Tensor

    def setting(self, name: str) -> SettingValue:
        return dict(self.settings).get(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for torch.save(weights_only loading): lists, strings, numbers and one tensor."""
        settings = [[name, list(value) if isinstance(value, tuple) else value] for name, value in self.settings]
        return {
            "epoch": self.epoch,
            "samples": [list(sample) for sample in self.samples],
            "settings": settings,
            "generator": self.generator,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleRecord:
        generator = data["generator"]
        if not isinstance(generator, torch.Tensor):
            raise ValueError("a timeline record's generator state is not a tensor")
        samples = tuple((str(prefix), str(text)) for prefix, text in data["samples"])
        settings = tuple(
            (str(name), tuple(value) if isinstance(value, list) else value) for name, value in data["settings"]
        )
        return cls(int(data["epoch"]), samples, settings, generator)


def live_settings(config: TrainConfig) -> tuple[tuple[str, SettingValue], ...]:
    """The settings a report's samples were drawn under, as they can change mid-run (the live ones)."""
    return tuple((name, getattr(config, name)) for name in LIVE_SETTINGS)


def draw_samples(
    model: CharRNN,
    vocab: Vocab,
    prefixes: tuple[str, ...],
    length: int,
    temperature: float | None,
    generator: torch.Generator,
) -> tuple[Sample, ...]:
    """A report's samples, one per prefix in order, each continuing the generator's draws: the one way the trainer
    draws them and the one way a checkpoint regenerates them."""
    return tuple((prefix, generate(model, vocab, prefix, length, temperature, None, generator)) for prefix in prefixes)


def regenerate(model: CharRNN, vocab: Vocab, record: SampleRecord) -> tuple[Sample, ...]:
    """The record's samples drawn again from model (the weights of the record's epoch): equal when they are."""
    generator = torch.Generator()
    generator.set_state(record.generator)
    length = record.setting("pred_len")
    temperature = record.setting("temperature")
    if not isinstance(length, int) or not (temperature is None or isinstance(temperature, (int, float))):
        raise CheckpointError(f"the timeline's record of epoch {record.epoch} lacks its sampling settings")
    prefixes = tuple(prefix for prefix, _ in record.samples)
    return draw_samples(model, vocab, prefixes, length, temperature, generator)
