"""The sample timeline as a lab view: every report's samples with their epoch and settings, how much of each is
copied verbatim from the training text, and whether a checkpoint's weights reproduce its own epoch's samples.

The copies are the lab's copied-text detector's (engine.lab.copies: generated characters only, a stretch may begin
in the prefix), the same figures the Samples panel, `lab copies` and `--metrics` give for the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.data.corpus import Vocab
from engine.lab.copies import SampleCopy, index_for, sample_copy
from engine.model import CharRNN
from engine.timeline import Sample, SampleRecord, regenerate


@dataclass(frozen=True)
class TimelineSample:
    prefix: str
    copy: SampleCopy  # the sample (prefix + generated) and what of it is copied from the training text

    @property
    def text(self) -> str:
        return self.copy.text

    @property
    def generated(self) -> str:
        return self.text[len(self.prefix) :]

    @property
    def longest_copy(self) -> int:
        return self.copy.longest_copy

    def to_json(self) -> dict[str, Any]:
        c = self.copy
        return {
            "prefix": self.prefix,
            "text": self.text,
            "longest_copy": c.longest_copy,
            "copied": c.copied,
            "generated": c.generated,
            "copy_share": c.copy_share,
        }


@dataclass(frozen=True)
class TimelineEntry:
    epoch: int
    settings: dict[str, Any]  # the live settings the samples were drawn under
    samples: tuple[TimelineSample, ...]

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "settings": self.settings, "samples": [s.to_json() for s in self.samples]}

    def settings_line(self) -> str:
        """'lr 0.001 · clip 0.01 · temperature greedy · 50 characters'."""
        get = self.settings.get
        temperature = get("temperature")
        shown = "greedy" if temperature is None else f"{temperature:g}"
        return f"lr {get('lr'):g} · clip {get('clip'):g} · temperature {shown} · {get('pred_len')} characters"


@dataclass(frozen=True)
class Reproduction:
    """The checkpoint's weights drawing its own epoch's samples again."""

    epoch: int
    samples: tuple[Sample, ...]
    equal: bool  # byte for byte the samples the run drew

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "equal": self.equal, "samples": [list(s) for s in self.samples]}


@dataclass(frozen=True)
class TimelineView:
    entries: tuple[TimelineEntry, ...]
    reproduction: Reproduction | None  # None when the checkpoint's epoch drew no samples (or it was saved mid-epoch)
    why_not_reproduced: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [entry.to_json() for entry in self.entries],
            "reproduced": self.reproduction.to_json() if self.reproduction is not None else None,
        }

    def lines(self) -> list[str]:
        if not self.entries:
            return ["no samples on this run's timeline (it was saved before its first report, or before timelines)"]
        out: list[str] = []
        for entry in self.entries:
            out.append(f"epoch {entry.epoch}: {entry.settings_line()}")
            for sample in entry.samples:
                c = sample.copy
                out.append(f" - {sample.text}  (copied {c.copied} of {c.generated}, longest copy {c.longest_copy})")
        if self.reproduction is not None:
            verdict = "identical, byte for byte" if self.reproduction.equal else "DIFFERENT from the run's"
            out.append(f"regenerated epoch {self.reproduction.epoch}'s samples from the checkpoint: {verdict}")
        elif self.why_not_reproduced:
            out.append(self.why_not_reproduced)
        return out


def timeline_entries(records: tuple[SampleRecord, ...], training_text: str) -> tuple[TimelineEntry, ...]:
    if not records:  # nothing to measure: the index is not built for it
        return ()
    index = index_for(training_text)  # the trainer's own when it has sampled: built once per text
    entries = []
    for record in records:
        samples = [TimelineSample(prefix, sample_copy(index, text, len(prefix))) for prefix, text in record.samples]
        settings = {name: list(v) if isinstance(v, tuple) else v for name, v in record.settings}
        entries.append(TimelineEntry(record.epoch, settings, tuple(samples)))
    return tuple(entries)


def timeline_view(
    records: tuple[SampleRecord, ...],
    training_text: str,
    model: CharRNN,
    vocab: Vocab,
    epoch: int,
    mid_epoch: bool = False,
) -> TimelineView:
    """The timeline of a checkpoint saved after epoch (mid_epoch: some batches of the next one trained too), with its
    own epoch's samples drawn again from its weights."""
    entries = timeline_entries(records, training_text)
    own = next((record for record in records if record.epoch == epoch), None)
    if own is None or mid_epoch:
        where = f"after epoch {epoch} and part of the next" if mid_epoch else f"at epoch {epoch}"
        why = f"not regenerated: the checkpoint was saved {where}, when no samples were drawn"
        return TimelineView(entries, None, why)
    drawn = regenerate(model, vocab, own)
    return TimelineView(entries, Reproduction(epoch, drawn, drawn == own.samples))
