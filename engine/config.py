"""Training settings: one dataclass, validated in one place, importable without torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NotRequired, TypedDict, TypeVar, Unpack

from engine.errors import ConfigError
from engine.setting_kinds import KINDS, Group, Kind, KindName, Runs, check_choice, finite
from engine.setting_kinds import SettingValue as SettingValue  # the value's type, imported from here by the front ends

CELLS = ("rnn", "gru", "lstm")
OPTIMIZERS = ("adam", "sgd")
SAMPLINGS = ("consecutive", "random", "windows")  # the Chinese edition's two; the English edition's
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")  # engine/precision.py: bf16 output-layer products; auto: bf16 where native
# The Chinese edition's §6.5 run (the default) and the English edition's; then the presets that generalise, found by
# the project's own sweep (docs/regularisation.md): each reads its corpus as the book's run on it does (PRESET_READS).
PRESETS = ("d2l-zh", "d2l-en", "whole-en", "whole-zh")
PRESET_READS = {"d2l-zh": "d2l-zh", "d2l-en": "d2l-en", "whole-en": "d2l-en", "whole-zh": "d2l-zh"}
SWITCH = ("off", "on")  # a setting that is on or off (--tie, --variational)
DECAYS = ("l2", "decoupled")  # weight decay added to the gradient (L2), or applied to the weights apart (AdamW)
SCHEDULES = ("constant", "plateau", "cosine")  # the learning rate over a run (engine/schedule.py)
STATE_POLICIES = ("carry", "epoch", "batch")  # keep the hidden state across epochs (book v1), or reset it
BOOK_PREFIXES = ("分开", "不分开")
# How training computes the model (engine/model.py): hand-written kernels (fast), torch's nn.RNN/GRU/LSTM with autograd
# (the book's §6.5), or a Python loop over time steps with autograd (the book's §6.4). Same weights, same figures.
IMPLS = ("fused", "torch", "scratch")


def reads_as(preset: str) -> str:
    """Which book's reading of the corpus a preset takes: d2l-en (The Time Machine, letters only) or d2l-zh."""
    return PRESET_READS.get(preset, preset)


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
    # The whole Time Machine, read as d2l-en reads it, the last tenth held out: an LSTM with an embedding tied to its
    # output layer, dropout on its input and output, a cosine schedule, stopped on held-out (docs/regularisation.md).
    "whole-en": {
        "max_chars": 0,
        "sampling": "random",
        "state": "batch",
        "cell": "lstm",
        "hidden": 256,
        "embed": 64,
        "tie": "on",
        "io_dropout": 0.2,
        "optimizer": "adam",
        "lr": 4e-3,
        "clip": 1.0,
        "schedule": "cosine",
        "epochs": 8,
        "patience": 2,
        "batch_size": 32,
        "num_steps": 64,
        "pred_period": 1,
        "pred_len": 50,
        "prefixes": ("the time traveller",),
    },
    # The whole lyrics, read as d2l-zh reads them, the last tenth held out; the same recipe at the lyrics' scale.
    "whole-zh": {
        "max_chars": 0,
        "sampling": "random",
        "state": "batch",
        "cell": "gru",
        "hidden": 256,
        "embed": 128,
        "tie": "on",
        "io_dropout": 0.3,
        "optimizer": "adam",
        "lr": 2e-3,
        "clip": 1.0,
        "schedule": "cosine",
        "epochs": 20,
        "patience": 3,
        "batch_size": 32,
        "num_steps": 35,
        "pred_period": 5,
        "pred_len": 50,
        "prefixes": BOOK_PREFIXES,
    },
}

SETTING = "setting"  # the dataclass field metadata key of a setting's declaration


@dataclass(frozen=True)
class Setting:
    """One training setting, declared once: every front end and engine list of settings is derived from it.

    The command line's flags (tui.cli), the app's form (tui.app.widgets.settings), the ready command (to_argv), the
    sweep's search space (engine.sweep.space), the runs table's labels (engine.run_book) and the per-epoch record
    (engine.events.EpochEnd.record) all read these; tests/test_settings.py walks every one through every place.
    """

    name: str  # the TrainConfig attribute
    label: str  # the app form's label (at most 9 characters, 8 if it restarts: its '*' follows it in the form)
    help: str  # the flag's help; its default is added (default_help)
    kind: KindName  # int, float, optional-int, optional-float, choice, prefixes, path (engine.setting_kinds)
    group: Group  # the --help section: corpus, model, training, reports
    runs: Runs  # how F10 tells runs apart by it: "label", "tiebreak" (only when labels clash) or "never"
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    default_help: str | None = None  # what --help says of the default; None: the value itself; "": nothing
    minimum: float | None = None  # the range: a number below is refused
    above: bool = False  # the minimum itself is refused too (lr > 0)
    maximum: float | None = None
    below: bool = False  # the maximum itself is refused too (dropout < 1)
    range_note: str = ""  # told with a range error: what 0 means ("0 turns it off"), or what to do instead
    live: bool = False  # a running trainer takes it between batches; otherwise it needs a restart (F7)
    resumable: bool = False  # a resumed run may change it (a live one always may)
    per_epoch: bool = False  # each epoch's figures record it (EpochEnd), as it can change mid-run
    vocab: bool = False  # the run's vocabulary depends on it
    compared: bool = True  # a sweep keeps it the same for a study's trials (False: it does not change the objective)
    searchable: bool = False  # a sweep may vary it (--search NAME=SPEC)
    search: str | None = None  # its range in the default search space (short form); None: not searched by default
    search_sgd: str | None = None  # its default range when the optimizer is plain SGD
    flag: str = ""  # the command line's; "" is the name with dashes

    @property
    def option(self) -> str:
        """The command-line option: '--batch-size'."""
        return "--" + (self.flag or self.name.replace("_", "-"))

    @property
    def kind_of(self) -> Kind:
        """The kind's own rules: parsing, showing, checking, its flag, its form field, its search dimension."""
        return KINDS[self.kind]

    @property
    def whole(self) -> bool:  # a whole number
        return self.kind_of.whole

    @property
    def numeric(self) -> bool:
        return self.kind_of.numeric


class Declaration(TypedDict):
    """setting()'s keywords: Setting's fields less the name, so mypy catches a misspelt or mistyped one
    (tests/test_settings.py keeps the two lists the same)."""

    label: str
    help: str
    kind: KindName
    group: Group
    runs: Runs
    choices: NotRequired[tuple[str, ...]]
    metavar: NotRequired[str | None]
    default_help: NotRequired[str | None]
    minimum: NotRequired[float | None]
    above: NotRequired[bool]
    maximum: NotRequired[float | None]
    below: NotRequired[bool]
    range_note: NotRequired[str]
    live: NotRequired[bool]
    resumable: NotRequired[bool]
    per_epoch: NotRequired[bool]
    vocab: NotRequired[bool]
    compared: NotRequired[bool]
    searchable: NotRequired[bool]
    search: NotRequired[str | None]
    search_sgd: NotRequired[str | None]
    flag: NotRequired[str]


T = TypeVar("T")


def setting(default: T, **declaration: Unpack[Declaration]) -> T:
    """A TrainConfig field with its declaration (Setting's fields, less the name): the one place a setting is named."""
    return field(default=default, metadata={SETTING: declaration})


_EN = PRESET_SETTINGS["d2l-en"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the book's §6.5 settings.

    Fields are in the app form's order (two per row, live settings first); each declares itself (Setting).
    """

    lr: float = setting(
        1e-3, label="lr", help="learning rate", kind="float", group="training", runs="label", metavar="LR",
        minimum=0, above=True, live=True, per_epoch=True, searchable=True, search="1e-4:3e-2:log",
        search_sgd="1e-2:10:log",
    )  # fmt: skip
    # Global L2 norm; 0 turns clipping off ("book mode": the book never clips).
    clip: float = setting(
        0.01, label="clip", kind="float", group="training", runs="label", metavar="THETA",
        help="clip the gradients' global L2 norm to THETA; 0 = off, as the book in effect", minimum=0,
        range_note="0 turns clipping off", live=True, per_epoch=True, searchable=True, search="0,0.01,0.1,1.0,10.0",
    )  # fmt: skip
    # L2 on every parameter, added to its gradient before the step (torch.optim's weight_decay); 0: the book's none.
    weight_decay: float = setting(
        0.0, label="wt decay", kind="float", group="training", runs="label", metavar="L2",
        help="weight decay: add L2 × each weight to its gradient, pulling the weights towards 0 against "
        "memorisation; 0 = off, as the book", minimum=0, range_note="0 turns it off", live=True, per_epoch=True,
        searchable=True,
    )  # fmt: skip
    pred_period: int = setting(
        50, label="period", help="sample every N epochs", kind="int", group="reports", runs="never", metavar="N",
        minimum=1, live=True, compared=False,
    )  # fmt: skip
    pred_len: int = setting(
        50, label="pred len", help="characters per sample", kind="int", group="reports", runs="never", metavar="N",
        minimum=0, live=True, compared=False,
    )  # fmt: skip
    # None: greedy, as the book; a value > 0 samples during reports.
    temperature: float | None = setting(
        None, label="temp", help="sample with temperature T > 0", kind="optional-float", group="reports",
        runs="never", metavar="T", minimum=0, above=True, range_note="leave it out for greedy",
        default_help="greedy, as the book", live=True,
        compared=False,
    )  # fmt: skip
    prefixes: tuple[str, ...] = setting(
        BOOK_PREFIXES, label="prefixes", help="a sample prefix; repeatable", kind="prefixes", group="reports",
        runs="never", metavar="TEXT", flag="prefix", default_help="分开 and 不分开; d2l-en: it has", live=True,
        compared=False,
    )  # fmt: skip
    preset: str = setting(
        "d2l-zh", label="preset", kind="choice", choices=PRESETS, group="corpus", runs="label", vocab=True,
        help="which book's run: d2l-zh (the Chinese edition's §6.5, Jay Chou lyrics) or d2l-en (the English "
        f"edition's: The Time Machine, shipped; letters only, hidden {_EN['hidden']}, SGD lr {_EN['lr']:g}, clip "
        f"{_EN['clip']:g}, batch {_EN['batch_size']}, {_EN['epochs']} epochs); whole-en and whole-zh: the whole "
        "Time Machine or lyrics with the regularised model the sweep found (docs/regularisation.md); a flag given "
        "with it wins",
    )  # fmt: skip
    cell: str = setting(
        "rnn", label="cell", help="recurrent cell", kind="choice", choices=CELLS, group="model", runs="label",
        searchable=True, search="rnn,gru,lstm",
    )  # fmt: skip
    hidden: int = setting(
        256, label="hidden", help="hidden units", kind="int", group="model", runs="label", metavar="N", minimum=1,
        searchable=True, search="64,128,256,512",
    )  # fmt: skip
    layers: int = setting(
        1, label="layers", help="recurrent layers", kind="int", group="model", runs="label", metavar="N", minimum=1,
        searchable=True, search="1:2",
    )  # fmt: skip
    # A sweep samples it only in trials with more than one layer: it acts between layers.
    dropout: float = setting(
        0.0, label="dropout", help="dropout between layers", kind="float", group="model", runs="label", metavar="P",
        minimum=0, maximum=1, below=True, searchable=True, search="0:0.5",
    )  # fmt: skip
    # On the first layer's input (an embedding's vectors; with one-hot input, whole characters) and the last layer's
    # output, before the output layer; --dropout acts between layers. AWD-LSTM (Merity et al. 2017) drops both.
    io_dropout: float = setting(
        0.0, label="io drop", kind="float", group="model", runs="label", metavar="P", minimum=0, maximum=1,
        below=True, searchable=True, help="dropout on the recurrent layers' input (the embedding's vectors; with "
        "one-hot input, whole characters) and output (before the output layer); 0 = off, as the book",
    )  # fmt: skip
    variational: str = setting(
        "off", label="io mask", kind="choice", choices=SWITCH, group="model", runs="label", searchable=True,
        help="variational dropout: one --io-dropout mask per sequence, the same at every step (embedding vectors "
        "and outputs), instead of a new mask each step",
    )  # fmt: skip
    # 0: the book's one-hot input (W_ih's columns are the characters' vectors).
    embed: int = setting(
        0, label="embed", kind="int", group="model", runs="label", metavar="N", minimum=0, searchable=True,
        range_note="0 = the book's one-hot input", help="an input embedding of N numbers per character before the "
        "recurrent layer; 0 = the book's one-hot input",
    )  # fmt: skip
    # Press & Wolf 2017: the output layer's weights are the input embedding's; a projection when the sizes differ.
    tie: str = setting(
        "off", label="tie", kind="choice", choices=SWITCH, group="model", runs="label", searchable=True,
        help="tie the output layer's weights to the input embedding (Press & Wolf 2017); with --embed 0 the "
        "embedding is --hidden wide, with another size a projection from the hidden state to it comes first",
    )  # fmt: skip
    optimizer: str = setting(
        "adam", label="optim", help="", kind="choice", choices=OPTIMIZERS, group="training", runs="label",
        searchable=True,
    )  # fmt: skip
    # l2: --weight-decay × w added to the gradient (torch's weight_decay); decoupled: AdamW's w -= lr × decay × w.
    decay: str = setting(
        "l2", label="decay", kind="choice", choices=DECAYS, group="training", runs="label", live=True,
        per_epoch=True, searchable=True, help="how --weight-decay acts: l2 adds it to the gradient (torch's "
        "weight_decay; with Adam scaled by its step size) or decoupled shrinks the weights apart from the "
        "gradient (AdamW, Loshchilov & Hutter)",
    )  # fmt: skip
    # The learning rate over the run, a multiple of --lr (engine/schedule.py); the current one is in Status.
    schedule: str = setting(
        "constant", label="schedule", kind="choice", choices=SCHEDULES, group="training", runs="label",
        searchable=True, help="the learning rate over the run: constant (the book's), plateau (halved whenever "
        "held-out perplexity has not improved for an epoch) or cosine (from --lr down to 0 over --epochs)",
    )  # fmt: skip
    patience: int = setting(
        0, label="patience", kind="int", group="training", runs="tiebreak", metavar="N",
        help="stop when held-out perplexity has not improved for N epochs", default_help="0, never", minimum=0,
        range_note="0 turns it off", live=True,
    )  # fmt: skip
    epochs: int = setting(
        250, label="epochs", help="", kind="int", group="training", runs="tiebreak", metavar="N", minimum=1,
        resumable=True,
    )  # fmt: skip
    batch_size: int = setting(
        32, label="batch", help="", kind="int", group="training", runs="label", metavar="N", minimum=1,
        searchable=True,
    )  # fmt: skip
    num_steps: int = setting(
        35, label="steps", help="characters per sequence", kind="int", group="training", runs="label", metavar="N",
        minimum=1, searchable=True, search="16,35,64",
    )  # fmt: skip
    sampling: str = setting(
        "consecutive", label="sampling", kind="choice", choices=SAMPLINGS, group="training", runs="label",
        searchable=True, help="minibatch sampling: the Chinese edition's consecutive or random, the English "
        "edition's overlapping windows",
    )  # fmt: skip
    # carry: across batches and epochs (book v1); epoch/batch: reset at each.
    state: str = setting(
        "carry", label="state", kind="choice", choices=STATE_POLICIES, group="training", runs="label",
        help="consecutive sampling: carry the hidden state across batches and epochs (the book's v1), or start "
        "from a zero state each epoch or each batch",
    )  # fmt: skip
    max_chars: int = setting(
        10_000, label="maxchars", help="keep the first N characters, 0 keeps all", kind="int", group="corpus",
        runs="label", metavar="N", minimum=0, range_note="0 keeps all", vocab=True,
    )  # fmt: skip
    seed: int | None = setting(
        None, label="seed", help="make the run reproducible", kind="optional-int", group="training",
        runs="tiebreak", metavar="N", default_help="", compared=False,
    )  # fmt: skip
    # Held-out characters after the training text; 0: no held-out evaluation. 1,500 for the book's run keeps the
    # evaluation at about 8 % of an epoch's time on one thread (bench/eval_overhead.py: 1,000 5 %, 2,000 10 %;
    # it grows with the characters read); d2l-en holds out the English edition's 5,000.
    val_chars: int = setting(
        1_500, label="held-out", kind="int", group="corpus", runs="label", metavar="N",
        help="hold out the N characters after the training text, evaluated after each epoch from a zero state; "
        "0 = off", default_help=f"1,500; d2l-en {_EN['val_chars']:,}", minimum=0, range_note="0 turns it off",
        vocab=True,
    )  # fmt: skip
    # With max_chars 0 (or a corpus shorter than it): the corpus's tail share held out.
    val_fraction: float = setting(
        0.1, label="heldfrac", kind="float", group="corpus", runs="label", metavar="F",
        help="with --max-chars 0, or a corpus shorter than --max-chars: hold out its last share F", minimum=0,
        maximum=1, below=True, vocab=True,
    )  # fmt: skip
    # The test text, after the held-out text: as many characters as held out (the book's split), or with max_chars 0
    # the corpus's last share. Reported when a run ends; nothing that chooses (early stopping, best checkpoint,
    # sweeps, Apply best) reads it.
    test_fraction: float = setting(
        0.1, label="testfrac", kind="float", group="corpus", runs="label", metavar="F",
        help="a test text after the held-out text, reported once a run ends and never used to choose: as many "
        "characters as held out, or with --max-chars 0 the corpus's last share F; 0 = off", minimum=0, maximum=1,
        below=True, range_note="0 turns it off", vocab=True,
    )  # fmt: skip
    # How long a stretch of held-out or test text is read from a zero state (engine/evaluate.py). 0: num_steps, the
    # English edition's validation. Longer ones give each character the context counting has.
    eval_stretch: int = setting(
        0, label="stretch", kind="int", group="corpus", runs="label", metavar="N", minimum=0,
        range_note="0 = --num-steps", help="read the held-out and test texts in stretches of N characters, each "
        "from a zero state (the fresh-state figure keeps --num-steps); 0 = --num-steps",
    )  # fmt: skip
    device: str = setting(
        "auto", label="device", help="", kind="choice", choices=DEVICES, group="training", runs="tiebreak",
        resumable=True, compared=False,
    )  # fmt: skip
    # The output layer's products in bfloat16 where the hardware multiplies it natively (engine/precision.py). The
    # weights stay float32 in every precision, so a resumed run may change it; a sweep's trials may differ in it.
    precision: str = setting(
        "fp32", label="dtype", kind="choice", choices=PRECISIONS, group="training", runs="label",
        help="bf16: the output layer's products in bfloat16, where the CPU/GPU has it natively; auto: bf16 where "
        "native, else fp32", default_help="fp32, the book's", resumable=True, compared=False,
    )  # fmt: skip
    # The book's exercise "is the concise implementation faster than the from-scratch one, and why?": the same
    # weights and arithmetic three ways, so a resumed run may change it and a sweep's trials may differ in it.
    impl: str = setting(
        "fused", label="impl", kind="choice", choices=IMPLS, group="training", runs="tiebreak",
        help="how training computes the model: fused (hand-written kernels), torch (nn.RNN/GRU/LSTM fed one-hot, "
        "autograd: the book's §6.5) or scratch (a Python loop over time steps: the book's §6.4); the same "
        "perplexities, at different speeds (fp32 only)", default_help="fused", resumable=True, compared=False,
    )  # fmt: skip
    # None: $RNN_TUI_CORPUS, then data/jaychou_lyrics.txt.zip (d2l-en: its shipped Time Machine).
    corpus: str | None = setting(
        None, label="corpus", kind="path", group="corpus", runs="tiebreak", metavar="PATH",
        help="a UTF-8 .txt or a .zip", default_help="$RNN_TUI_CORPUS, then data/jaychou_lyrics.txt.zip; with "
        "--preset d2l-en the shipped Time Machine", resumable=True, vocab=True, compared=False,
    )  # fmt: skip

    def __post_init__(self) -> None:
        if isinstance(self.prefixes, list):  # from argparse or JSON; stored as a tuple so the config stays hashable
            object.__setattr__(self, "prefixes", tuple(self.prefixes))
        validate(self)

    def with_changes(self, **changes: Any) -> TrainConfig:
        """A validated copy with some settings changed."""
        unknown = sorted(set(changes) - set(SETTINGS_BY_NAME))
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
        values = {k: v for k, v in data.items() if k in SETTINGS_BY_NAME}
        if "prefixes" in values:
            values["prefixes"] = tuple(values["prefixes"])
        if values.get("temperature") == 0:  # early checkpoints wrote 0 for greedy
            values["temperature"] = None
        if "val_chars" not in data and values.get("max_chars", 1) == 0:
            # A checkpoint from before held-out evaluation, trained on a whole corpus: holding out its tail now
            # would change its training text, and a resumed run must go on as it was.
            values["val_chars"] = 0
        if "test_fraction" not in data:
            # A checkpoint from before the test text: a test tail now would change the training text of a run on a
            # whole corpus (or on one shorter than max_chars), and a resumed run must go on as it was.
            values["test_fraction"] = 0.0
        return cls(**values)

    def structural_differences(self, other: TrainConfig) -> list[str]:
        """Names of settings that differ and cannot be applied to a running trainer."""
        return [s.name for s in SETTINGS if not s.live and getattr(self, s.name) != getattr(other, s.name)]


# Every setting's declaration, in TrainConfig's order.
SETTINGS: tuple[Setting, ...] = tuple(Setting(name=f.name, **f.metadata[SETTING]) for f in fields(TrainConfig))
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# Settings a running trainer accepts between batches; every other one needs a new trainer.
LIVE_SETTINGS = tuple(s.name for s in SETTINGS if s.live)
# The settings a run's vocabulary depends on: the corpus, how it is read, and which part of it is training text.
VOCAB_SETTINGS = tuple(s.name for s in SETTINGS if s.vocab)


def validate(config: TrainConfig) -> None:
    """Raise ConfigError with a one-line message naming the first bad setting (as «name»: engine.errors)."""
    for declared in SETTINGS:
        value = getattr(config, declared.name)
        if declared.name != "seed":  # a seed's range is torch's (check_seed)
            declared.kind_of.check(declared, value)
    if config.patience and not held_out_on(config):
        why = "«val_chars» is 0" if not config.val_chars else "with «max_chars» 0, «val_fraction» is 0"
        raise ConfigError(f"«patience» {config.patience} needs held-out evaluation, but {why}")
    if config.schedule == "plateau" and not held_out_on(config):
        why = "«val_chars» is 0" if not config.val_chars else "with «max_chars» 0, «val_fraction» is 0"
        raise ConfigError(f"«schedule» plateau needs held-out evaluation, but {why}")
    if config.val_fraction + config.test_fraction >= 1:
        raise ConfigError(
            f"«val_fraction» {config.val_fraction:g} + «test_fraction» {config.test_fraction:g} must be below 1: "
            "nothing would be left to train on"
        )
    if config.pred_len > MAX_GENERATE_LEN:
        raise ConfigError(f"«pred_len» must be at most {MAX_GENERATE_LEN}, got {config.pred_len}")
    check_seed(config.seed)
    if not isinstance(config.prefixes, tuple) or not all(isinstance(p, str) for p in config.prefixes):
        raise ConfigError("«prefixes» must be a list of strings")
    for prefix in config.prefixes:
        if not prefix:
            raise ConfigError("a prefix is empty: give at least one character")
        if len(prefix) > MAX_PREFIX_LEN:
            raise ConfigError(f"a prefix is {len(prefix)} characters long; the limit is {MAX_PREFIX_LEN}")


def stream_length(config: TrainConfig) -> int:
    """Characters predicted per stretch of held-out or test text read from a zero state: --eval-stretch, or num_steps
    (engine/evaluate.py's docstring)."""
    return config.eval_stretch or config.num_steps


def held_out_on(config: TrainConfig) -> bool:
    """Whether the settings ask for held-out evaluation: val-chars > 0 and, with max-chars 0, val-fraction > 0."""
    return config.val_chars > 0 and (config.max_chars > 0 or config.val_fraction > 0)


def preset_config(overrides: dict[str, Any]) -> TrainConfig:
    """The config of overrides["preset"] (default d2l-zh): its PRESET_SETTINGS, then every explicit setting over them.

    overrides holds only what was given explicitly (flags, form values); what is left out comes from the preset,
    then from TrainConfig's defaults.
    """
    preset = overrides.get("preset", TrainConfig.preset)
    check_choice("preset", preset, PRESETS)
    return TrainConfig(**{**PRESET_SETTINGS[preset], **overrides, "preset": preset})


def preset_conflicts(overrides: dict[str, Any]) -> list[str]:
    """Explicit settings that contradict an explicitly chosen preset, as '«hidden» 64 (preset: 32)'; they win. A front
    end names the setting its own way (engine.errors.worded: --hidden on the command line)."""
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
            conflicts.append(f"«{name}» {_shown(given)} (preset: {_shown(wanted)})")
    return conflicts


def preset_note(overrides: dict[str, Any]) -> str | None:
    """One line for the start-up: which explicit settings override the chosen preset's (None when none do)."""
    conflicts = preset_conflicts(overrides)
    if not conflicts:
        return None
    wins = "the explicit settings win" if len(conflicts) > 1 else "the explicit setting wins"
    return f"preset {overrides['preset']} with {', '.join(conflicts)}: {wins}"


def to_argv(settings: TrainConfig | Mapping[str, Any], always: Iterable[str] = ()) -> list[str]:
    """The command-line words that parse back to these settings (tui.cli.parse): the one inverse of parsing.

    A setting is left out when its value is what the chosen preset gives anyway (TrainConfig's default where the
    preset sets nothing), unless named in always; a blank one (None) too, as no flag says blank. A whole config
    comes back equal (tests/test_settings.py); a Mapping is the settings given explicitly, the rest left to parsing.
    """
    values = {s.name: getattr(settings, s.name) for s in SETTINGS} if isinstance(settings, TrainConfig) else settings
    preset = values.get("preset", TrainConfig.preset)
    implied = preset_config({"preset": preset}) if preset in PRESETS else TrainConfig()
    keep = set(always) | ({"preset"} if preset != TrainConfig.preset else set())  # the preset says the rest
    words: list[str] = []
    for declared in SETTINGS:
        if declared.name not in values:
            continue
        value = values[declared.name]
        value = tuple(value) if isinstance(value, list) else value
        if value is None or (declared.name not in keep and value == getattr(implied, declared.name)):
            continue
        words += declared.kind_of.words(declared.option, value)
    return words


def flag_name(name: str) -> str:
    """How the command line calls a setting named in an engine message (engine.errors.worded): '--val-chars'."""
    declared = SETTINGS_BY_NAME.get(name)
    return declared.option if declared is not None else name.replace("_", "-")


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
    if temperature is not None and finite("temperature", temperature) <= 0:
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
    if config.variational == "on" and not config.io_dropout:
        notes.append("variational on does nothing with io dropout 0: it shapes the io dropout masks")
    if config.decay == "decoupled" and not config.weight_decay:
        notes.append("decay decoupled does nothing with weight decay 0")
    return notes


# torch.manual_seed takes [-2**63, 2**64 - 1]; the trainer also seeds with seed + 1 and seed + 2.
SEED_MIN = -(2**63)
SEED_MAX = 2**64 - 3

# Generation caps: a learner typing 10**9 gets a clear message, not a frozen machine.
MAX_GENERATE_LEN = 10_000
# A prefix: a page of text at most (a served seat's memory and core are shared; engine.generate reads it in chunks).
MAX_PREFIX_LEN = 10_000
