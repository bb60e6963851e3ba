"""Training settings: one dataclass, validated in one place, importable without torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from engine.errors import ConfigError

CELLS = ("rnn", "gru", "lstm")
OPTIMIZERS = ("adam", "sgd")
SAMPLINGS = ("consecutive", "random", "windows")  # the Chinese edition's two; the English edition's
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")  # engine/precision.py: bf16 output-layer products; auto: bf16 where native
PRESETS = ("d2l-zh", "d2l-en")  # the Chinese edition's §6.5 run (the default) and the English edition's
STATE_POLICIES = ("carry", "epoch", "batch")  # keep the hidden state across epochs (book v1), or reset it
BOOK_PREFIXES = ("分开", "不分开")
# The settings a run's vocabulary depends on: the corpus, how it is read, and which part of it is training text.
VOCAB_SETTINGS = ("preset", "corpus", "max_chars", "val_chars", "val_fraction")

# The value of one setting, as TrainConfig's fields hold them: prefixes a tuple of strings, a blank optional one None.
# Which type each name takes is checked when a config is made (validate), not statically: a setting travels by name.
SettingValue = int | float | str | tuple[str, ...] | None

# What each preset sets. Choosing a preset applies these; a setting given explicitly (a flag, a form value)
# wins over its preset's. The d2l-zh values are TrainConfig's defaults; d2l-en is the English edition's run
# (../shared/seed/d2l-en.md): The Time Machine, letters only, overlapping windows, SGD lr 1 clipped at 1.
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    "d2l-zh": {
        "max_chars": 10_000,
        "val_chars": 1_500,
        "sampling": "consecutive",
        "state": "carry",
        "hidden": 256,
        "optimizer": "adam",
        "lr": 1e-3,
        "clip": 0.01,
        "epochs": 250,
        "batch_size": 32,
        "num_steps": 35,
        "pred_period": 50,
        "pred_len": 50,
        "prefixes": BOOK_PREFIXES,
    },
    "d2l-en": {
        "max_chars": 10_000,
        "val_chars": 5_000,
        "sampling": "windows",
        "state": "batch",
        "hidden": 32,
        "optimizer": "sgd",
        "lr": 1.0,
        "clip": 1.0,
        "epochs": 100,
        "batch_size": 1024,
        "num_steps": 32,
        "pred_period": 100,
        "pred_len": 20,
        "prefixes": ("it has",),
    },
}

# Settings a running trainer accepts between batches; every other one needs a new trainer.
LIVE_SETTINGS = ("lr", "clip", "pred_period", "pred_len", "prefixes", "temperature", "patience")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the book's §6.5 settings."""

    preset: str = "d2l-zh"  # which book's run: its corpus, preprocessing and vocabulary
    corpus: str | None = None  # None: $RNN_TUI_CORPUS, then data/jaychou_lyrics.txt.zip
    max_chars: int = 10_000  # the book keeps the first 10,000 characters; 0 keeps all
    # Held-out characters after the training text; 0: no held-out evaluation. 1,500 for the book's run keeps the
    # evaluation at about 8 % of an epoch's time on one thread (bench/eval_overhead.py: 1,000 5 %, 2,000 10 %;
    # it grows with the characters read); d2l-en holds out the English edition's 5,000.
    val_chars: int = 1_500
    val_fraction: float = 0.1  # with max_chars 0: the corpus's tail share held out
    sampling: str = "consecutive"
    state: str = "carry"  # carry: across batches and epochs (book v1); epoch/batch: reset at each
    cell: str = "rnn"
    layers: int = 1
    hidden: int = 256
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    clip: float = 0.01  # global L2 norm; 0 turns clipping off ("book mode": the book never clips)
    epochs: int = 250
    patience: int = 0  # stop when held-out perplexity has not improved for this many epochs; 0: never
    batch_size: int = 32
    num_steps: int = 35
    pred_period: int = 50
    pred_len: int = 50
    prefixes: tuple[str, ...] = field(default=BOOK_PREFIXES)
    temperature: float | None = None  # None: greedy, as the book; a value > 0 samples during reports
    seed: int | None = None
    device: str = "auto"
    precision: str = "fp32"  # the book's float32; bf16 / auto: engine/precision.py

    def __post_init__(self) -> None:
        if isinstance(self.prefixes, list):  # from argparse or JSON; stored as a tuple so the config stays hashable
            object.__setattr__(self, "prefixes", tuple(self.prefixes))
        validate(self)

    def with_changes(self, **changes: Any) -> TrainConfig:
        """A validated copy with some settings changed."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown setting: {', '.join(unknown)}")
        if "prefixes" in changes:
            changes["prefixes"] = tuple(changes["prefixes"])
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prefixes"] = list(self.prefixes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "prefixes" in values:
            values["prefixes"] = tuple(values["prefixes"])
        if values.get("temperature") == 0:  # early checkpoints wrote 0 for greedy
            values["temperature"] = None
        if "val_chars" not in data and values.get("max_chars", 1) == 0:
            # A checkpoint from before held-out evaluation, trained on a whole corpus: holding out its tail now
            # would change its training text, and a resumed run must go on as it was.
            values["val_chars"] = 0
        return cls(**values)

    def structural_differences(self, other: TrainConfig) -> list[str]:
        """Names of settings that differ and cannot be applied to a running trainer."""
        return [
            f.name
            for f in fields(self)
            if f.name not in LIVE_SETTINGS and getattr(self, f.name) != getattr(other, f.name)
        ]


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number ≥ 1, got {value!r}")


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def validate(config: TrainConfig) -> None:
    """Raise ConfigError with a one-line message naming the first bad setting."""
    _choice("cell", config.cell, CELLS)
    _choice("optimizer", config.optimizer, OPTIMIZERS)
    _choice("sampling", config.sampling, SAMPLINGS)
    _choice("device", config.device, DEVICES)
    _choice("precision", config.precision, PRECISIONS)
    _choice("preset", config.preset, PRESETS)
    _choice("state", config.state, STATE_POLICIES)
    for name in ("layers", "hidden", "epochs", "batch_size", "num_steps", "pred_period"):
        _positive_int(name.replace("_", "-"), getattr(config, name))
    if isinstance(config.max_chars, bool) or not isinstance(config.max_chars, int) or config.max_chars < 0:
        raise ConfigError(f"max-chars must be a whole number ≥ 0 (0 keeps all), got {config.max_chars!r}")
    for name in ("val_chars", "patience"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name.replace('_', '-')} must be a whole number ≥ 0 (0 turns it off), got {value!r}")
    if not 0 <= _finite("val_fraction", config.val_fraction) < 1:
        raise ConfigError(f"val-fraction must be in [0, 1), got {config.val_fraction!r}")
    if config.patience and not held_out_on(config):
        why = "val-chars is 0" if not config.val_chars else "with max-chars 0, val-fraction is 0"
        raise ConfigError(f"patience {config.patience} needs held-out evaluation, but {why}")
    if isinstance(config.pred_len, bool) or not isinstance(config.pred_len, int) or config.pred_len < 0:
        raise ConfigError(f"pred-len must be a whole number ≥ 0, got {config.pred_len!r}")
    if config.pred_len > MAX_GENERATE_LEN:
        raise ConfigError(f"pred-len must be at most {MAX_GENERATE_LEN}, got {config.pred_len}")
    if _finite("lr", config.lr) <= 0:
        raise ConfigError(f"lr must be > 0, got {config.lr!r}")
    if _finite("clip", config.clip) < 0:
        raise ConfigError(f"clip must be ≥ 0 (0 turns clipping off), got {config.clip!r}")
    check_temperature(config.temperature)
    dropout = _finite("dropout", config.dropout)
    if not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {config.dropout!r}")
    check_seed(config.seed)
    if not isinstance(config.prefixes, tuple) or not all(isinstance(p, str) for p in config.prefixes):
        raise ConfigError("prefixes must be a list of strings")
    for prefix in config.prefixes:
        if not prefix:
            raise ConfigError("a prefix is empty: give at least one character")
        if len(prefix) > MAX_PREFIX_LEN:
            raise ConfigError(f"a prefix is {len(prefix)} characters long; the limit is {MAX_PREFIX_LEN}")


def held_out_on(config: TrainConfig) -> bool:
    """Whether the settings ask for held-out evaluation: val-chars > 0 and, with max-chars 0, val-fraction > 0."""
    return config.val_chars > 0 and (config.max_chars > 0 or config.val_fraction > 0)


def preset_config(overrides: dict[str, Any]) -> TrainConfig:
    """The config of overrides["preset"] (default d2l-zh): its PRESET_SETTINGS, then every explicit setting over them.

    overrides holds only what was given explicitly (flags, form values); what is left out comes from the preset,
    then from TrainConfig's defaults.
    """
    preset = overrides.get("preset", TrainConfig.preset)
    _choice("preset", preset, PRESETS)
    return TrainConfig(**{**PRESET_SETTINGS[preset], **overrides, "preset": preset})


def preset_conflicts(overrides: dict[str, Any]) -> list[str]:
    """Explicit settings that contradict an explicitly chosen preset, as '--hidden 64 (preset: 32)'; they win."""
    if "preset" not in overrides:
        return []
    preset_values = PRESET_SETTINGS[overrides["preset"]]
    conflicts = []
    for name, value in overrides.items():
        if name not in preset_values:
            continue
        wanted = preset_values[name]
        given = tuple(value) if isinstance(value, list) else value
        if given != wanted:
            flag = "prefix" if name == "prefixes" else name.replace("_", "-")
            conflicts.append(f"--{flag} {_shown(given)} (preset: {_shown(wanted)})")
    return conflicts


def preset_note(overrides: dict[str, Any]) -> str | None:
    """One line for the start-up: which explicit settings override the chosen preset's (None when none do)."""
    conflicts = preset_conflicts(overrides)
    if not conflicts:
        return None
    wins = "the explicit settings win" if len(conflicts) > 1 else "the explicit setting wins"
    return f"preset {overrides['preset']} with {', '.join(conflicts)}: {wins}"


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return " + ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_seed(seed: object) -> None:
    """None: a random seed; a seed itself must be a whole number torch's generators take (with seed + 2)."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, got {seed!r}")
    if not SEED_MIN <= seed <= SEED_MAX:
        raise ConfigError(f"seed must be between {SEED_MIN} and {SEED_MAX} (torch's generator range), got {seed}")


def check_temperature(temperature: float | None) -> None:
    """None means greedy (the book's choice); a temperature itself must be a finite number > 0."""
    if temperature is not None and _finite("temperature", temperature) <= 0:
        raise ConfigError(f"temperature must be > 0 (leave it out for greedy), got {temperature!r}")


def describe_layers(layers: int) -> str:
    """'1 layer', '2 layers'."""
    return f"{layers} layer{'s' * (layers != 1)}"


def ineffective_settings(config: TrainConfig) -> list[str]:
    """Settings that are valid but do nothing with the others as they are, each named in one line."""
    notes = []
    if config.dropout > 0 and config.layers == 1:
        notes.append(
            f"dropout {config.dropout:g} does nothing with 1 layer: it acts between layers (use layers 2 or more)"
        )
    return notes


# torch.manual_seed takes [-2**63, 2**64 - 1]; the trainer also seeds with seed + 1 and seed + 2.
SEED_MIN = -(2**63)
SEED_MAX = 2**64 - 3

# Generation caps: a learner typing 10**9 gets a clear message, not a frozen machine.
MAX_GENERATE_LEN = 10_000
MAX_PREFIX_LEN = 100_000
