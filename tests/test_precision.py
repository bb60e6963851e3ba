"""--precision: fp32 is the unchanged engine bit for bit, bf16 trains close to it and is refused where it is not native,
auto says what it chose, checkpoints keep it, and the CUDA choices follow the GPU's capability.

Native bfloat16 is faked through engine.precision's NATIVE_ENV (or a Support given to choose()), never by mocking
torch: the bf16 arithmetic itself runs for real on any CPU (in software where not native, only slower).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from test_bad_inputs import assert_one_line_error, run_main

from engine import events
from engine.checkpoint import load as load_checkpoint
from engine.config import flag_name
from engine.errors import ConfigError
from engine.generate import generate
from engine.precision import NATIVE_ENV, Support, choose, cpu_flags, cpu_support, cuda_support, step_context
from engine.session import open_session
from engine.trainer import Trainer

if TYPE_CHECKING:  # the app loads in the tests that run it
    from tui.app import RnnTuiApp

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
NATIVE, NOT_NATIVE = Support(True, False, "native for the test"), Support(False, False, "no bf16 for the test")

# Trains the book's run for a few epochs in a fresh process on one thread and prints its figures exactly (float.hex)
# with a digest of the final weights. PYTHONPATH picks the engine: this checkout's, or the one before --precision.
RUN_SCRIPT = """
import hashlib, json, sys
from dataclasses import fields
import torch
torch.set_num_threads(1)
from engine import events
from engine.config import TrainConfig
from engine.session import open_session
corpus_path, epochs, precision = sys.argv[1], int(sys.argv[2]), sys.argv[3]
extra = {"precision": precision} if precision != "-" else {}
assert precision == "-" or "precision" in {f.name for f in fields(TrainConfig)}
settings = {"corpus": corpus_path, "seed": 0, "epochs": epochs, "pred_period": 10**6, **extra}
history = []
trainer = open_session(settings, listener=history.append, threads=1).trainer
trainer.run()
ends = [e for e in history if isinstance(e, events.EpochEnd)]
assert len(ends) == epochs, history[-1]
digest = hashlib.sha256()
for name, tensor in sorted(trainer.model.state_dict().items()):
    digest.update(name.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
print(json.dumps({
    "perplexity": [e.perplexity.hex() for e in ends],
    "held_out": [e.val_perplexity.hex() for e in ends],
    "weights": digest.hexdigest(),
}))
"""


def paused(app: RnnTuiApp) -> bool:
    return app.run_control.status.state == "paused"


def run_engine(
    source: Path, corpus_path: Path, epochs: int, precision: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, str(corpus_path), str(epochs), precision],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=source,
        env={**(env or {}), "PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def engine_before_precision(destination: Path) -> Path | None:
    """This repository's tree as it was just before --precision came in (None outside a git checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()

    try:
        added = git("log", "--diff-filter=A", "--format=%H", "--", "engine/precision.py").splitlines()
        if not added:
            return None
        archive = subprocess.run(
            ["git", "archive", f"{added[-1]}^", "engine"], cwd=PROJECT_ROOT, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    destination.mkdir()
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    return destination


def test_fp32_is_the_engine_before_precision_bit_for_bit(tmp_path: Path, corpus_path: Path) -> None:
    """The same 3 epochs of the book's run, on this machine, by the engine as it was before --precision and by this
    one with fp32 given and with the setting left out: every perplexity and every weight bit equal. (If a later
    change means to alter fp32's numbers, this test names the commit to compare against: update it then.)"""
    old = engine_before_precision(tmp_path / "before")
    if old is None:
        pytest.skip("not a git checkout with the commit that added engine/precision.py")
    before = run_engine(old, corpus_path, 3, "-")
    assert run_engine(PROJECT_ROOT, corpus_path, 3, "fp32") == before
    assert run_engine(PROJECT_ROOT, corpus_path, 3, "-") == before
    # auto on a CPU without native bfloat16 is fp32 exactly, not an approximation of it.
    assert run_engine(PROJECT_ROOT, corpus_path, 3, "auto", {NATIVE_ENV: "0"}) == before
    # and bf16 is really another arithmetic: the figures move (within the quality guard's reach, see below).
    assert run_engine(PROJECT_ROOT, corpus_path, 3, "bf16", {NATIVE_ENV: "1"})["perplexity"] != before["perplexity"]


def train(settings: dict[str, Any]) -> tuple[Trainer, list[events.EpochEnd]]:
    history: list[events.Event] = []
    trainer = open_session(settings, listener=history.append, threads=1).trainer
    trainer.run()
    return trainer, [e for e in history if isinstance(e, events.EpochEnd)]


def test_bf16_trains_close_to_fp32(monkeypatch: pytest.MonkeyPatch, corpus_path: Path) -> None:
    monkeypatch.setenv(NATIVE_ENV, "1")
    settings = {"corpus": str(corpus_path), "seed": 0, "epochs": 4, "pred_period": 10**6}
    _, fp32 = train(settings)
    trainer, bf16 = train({**settings, "precision": "bf16"})
    assert trainer.precision.name == "bf16"
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay float32
    for a, b in zip(fp32, bf16, strict=True):
        assert a.perplexity != b.perplexity
        assert abs(b.perplexity / a.perplexity - 1) < 0.005, (a, b)
        assert a.val_perplexity is not None and b.val_perplexity is not None
        assert abs(b.val_perplexity / a.val_perplexity - 1) < 0.005, (a, b)


def test_choose_fp32_bf16_auto() -> None:
    assert choose("fp32", CPU, NOT_NATIVE).name == "fp32"
    assert choose("fp32", CPU, NATIVE).describe() == "fp32"  # fp32 asked is fp32, native bf16 or not
    chosen = choose("auto", CPU, NATIVE)
    assert (chosen.name, chosen.output_dtype) == ("bf16", torch.bfloat16)
    assert chosen.describe() == "bf16 (auto: native for the test)"
    fallback = choose("auto", CPU, NOT_NATIVE)
    assert (fallback.name, fallback.output_dtype) == ("fp32", None)
    assert fallback.describe() == "fp32 (auto: no bf16 for the test)"
    assert choose("bf16", CPU, NATIVE).output_dtype == torch.bfloat16
    with pytest.raises(ConfigError) as refused:
        choose("bf16", CPU, NOT_NATIVE)
    message = refused.value.worded(flag_name)  # as the command line words it; the form says "dtype"
    assert "\n" not in message and "slower than fp32" in message and "use fp32 or auto" in message
    assert message.startswith("--precision bf16 on cpu")


def test_auto_keeps_a_cell_that_misses_the_quality_guard_in_fp32() -> None:
    """The GRU's bf16 misses the quality guard (docs/performance.md, Precision): auto keeps it in fp32 where bf16 is
    native and says why; an explicit bf16 still trains it, with a one-line warning; the other cells are as before."""
    auto = choose("auto", CPU, NATIVE, cell="gru")
    assert auto.describe() == "fp32 (auto: bf16 misses the quality guard for the GRU)" and not auto.warning
    assert choose("auto", CPU, NOT_NATIVE, cell="gru").describe() == "fp32 (auto: no bf16 for the test)"
    explicit = choose("bf16", CPU, NATIVE, cell="gru")
    assert explicit.name == "bf16" and explicit.output_dtype == torch.bfloat16
    assert explicit.warning == "warning: bf16 misses the quality guard for the GRU (docs/performance.md)"
    for cell in ("rnn", "lstm"):
        assert (choose("auto", CPU, NATIVE, cell=cell).name, choose("bf16", CPU, NATIVE, cell=cell).warning) == (
            "bf16",
            "",
        )


def test_the_cli_warns_of_a_gru_in_bf16_and_hints_no_bf16_for_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], corpus_path: Path
) -> None:
    monkeypatch.setenv(NATIVE_ENV, "1")
    tiny = ["train", "--headless", "--corpus", str(corpus_path), "--cell", "gru", "--hidden", "16", "--epochs", "1"]
    tiny += ["--max-chars", "2000", "--pred-len", "0", "--threads", "1", "--val-chars", "0"]
    code, err = run_main([*tiny, "--precision", "bf16"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "quality guard for the GRU" in warnings[0], err
    code, err = run_main(tiny, capsys)  # fp32 for the GRU: no hint towards bf16, no warning
    assert code == 0 and "hint" not in err and "warning" not in err, err


def test_native_bf16_detection(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni avx512_bf16\n\nprocessor\t: 1\n")
    assert "avx512_bf16" in cpu_flags(cpuinfo)
    assert cpu_flags(tmp_path / "missing") == set()
    assert cpu_support({"avx512f", "avx512_bf16"}, env="").bf16
    assert cpu_support({"amx_bf16", "amx_tile"}, env="").why == "amx_bf16 on this CPU"
    assert not cpu_support({"avx512f", "avx512_vnni"}, env="").bf16  # VNNI is int8, not bfloat16
    assert not cpu_support({"avx512_bf16"}, env="0").bf16  # the environment overrides the flags, both ways
    assert cpu_support(set(), env="1").bf16


# /proc/cpuinfo as Linux writes it (abridged): an AMD Zen 4 (x86: "flags"), an AWS Graviton 3 (Neoverse V1, aarch64:
# "Features", with bf16) and a Graviton 2 (Neoverse N1: no bf16).
X86_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu vme sse2 avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 vaes
bugs\t\t: sysret_ss_attrs spectre_v1

processor\t: 1
"""
ARM_V1 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop \
sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1
"""
ARM_N1 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd0c
"""


@pytest.mark.parametrize(
    ("text", "native", "why"),
    [
        (X86_ZEN4, True, "avx512_bf16 on this CPU"),
        (ARM_V1, True, "Arm bf16 on this CPU"),
        (ARM_N1, False, "this CPU has no avx512_bf16, amx_bf16 or Arm bf16"),
        (X86_ZEN4.replace(" avx512_bf16", ""), False, "this CPU has no avx512_bf16, amx_bf16 or Arm bf16"),
    ],
    ids=["x86-zen4", "arm-neoverse-v1", "arm-neoverse-n1", "x86-without"],
)
def test_native_bf16_from_x86_and_arm_cpuinfo(tmp_path: Path, text: str, native: bool, why: str) -> None:
    """x86 lists its flags under "flags", aarch64 under "Features" (where FEAT_BF16 is "bf16", not a part of a name:
    svebf16 alone is not it)."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    flags = cpu_flags(cpuinfo)
    assert ("asimd" in flags) != ("sse2" in flags)  # the one line of flags, whole, whichever the architecture
    assert "0x41" not in flags and "AuthenticAMD" not in flags and "sysret_ss_attrs" not in flags  # and no other
    assert cpu_support(flags, env="") == Support(native, False, why)
    assert choose("auto", CPU, cpu_support(flags, env="")).name == ("bf16" if native else "fp32")
    assert not cpu_support({"svebf16", "sve"}, env="").bf16


def test_cuda_choice_follows_the_capability() -> None:
    """The CUDA plan without a GPU: Ampere (8.0) and later take bf16 with TF32 for the remaining float32 products;
    older GPUs have neither, so auto keeps fp32 and bf16 is refused."""
    cuda = torch.device("cuda")
    ampere, turing = cuda_support((8, 0)), cuda_support((7, 5))
    assert (ampere.bf16, ampere.tf32, turing.bf16, turing.tf32) == (True, True, False, False)
    chosen = choose("auto", cuda, ampere)
    assert (chosen.name, chosen.tf32) == ("bf16", True)
    assert (choose("auto", cuda, turing).name, choose("auto", cuda, turing).tf32) == ("fp32", False)
    assert choose("fp32", cuda, ampere).tf32 is False  # fp32 on CUDA stays float32, as before
    with pytest.raises(ConfigError, match=r"capability 7\.5"):
        choose("bf16", cuda, turing)


def test_tf32_is_on_only_inside_a_cuda_bf16_step() -> None:
    matmul = torch.backends.cuda.matmul
    assert matmul.allow_tf32 is False
    chosen = choose("bf16", torch.device("cuda"), cuda_support((9, 0)))
    with step_context(chosen, torch.device("cuda")):
        assert matmul.allow_tf32 is True
    assert matmul.allow_tf32 is False
    with step_context(choose("bf16", CPU, NATIVE), CPU):  # never on the CPU
        assert matmul.allow_tf32 is False
    with pytest.raises(RuntimeError), step_context(chosen, torch.device("cuda")):
        raise RuntimeError("a failed step")
    assert matmul.allow_tf32 is False  # restored however the step ends


def test_cli_refuses_bf16_without_native_support(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(NATIVE_ENV, "0")
    code, err = run_main(["train", "--headless", "--precision", "bf16", "--epochs", "1"], capsys)
    assert_one_line_error(code, err, "precision bf16", "slower than fp32")


def test_cli_start_up_line_says_the_precision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(NATIVE_ENV, "0")
    args = ["train", "--headless", "--precision", "auto", "--epochs", "1", "--pred-len", "0", "--threads", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "tui.main", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert f"precision fp32 (auto: {NATIVE_ENV}=0 says no bfloat16)" in first, first
    assert "hint" not in done.stderr
    # fp32 (the default) where bfloat16 is native: one line says how much faster bf16's products ran just now.
    args = [arg for arg in args if arg not in ("--precision", "auto")]
    done = subprocess.run(
        [sys.executable, "-m", "tui.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, NATIVE_ENV: "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "precision fp32," in done.stderr.splitlines()[0]
    hints = [line for line in done.stderr.splitlines() if line.startswith("hint:")]
    # A steady figure (the median of paired timings), or none when the machine was too busy to time it.
    steady = r"ran \d+\.\d× as fast in bf16 just now \(median of 9 timings\)|may run faster in bf16 \(the machine"
    assert len(hints) == 1 and re.search(steady, hints[0]) and "; --precision bf16" in hints[0], hints


def test_a_bf16_checkpoint_resumes_exactly_and_generates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus_path: Path
) -> None:
    monkeypatch.setenv(NATIVE_ENV, "1")
    settings = {"corpus": str(corpus_path), "seed": 3, "precision": "bf16", "pred_period": 10**6}
    whole: list[events.Event] = []
    open_session({**settings, "epochs": 3}, listener=whole.append, threads=1).trainer.run()
    first = open_session({**settings, "epochs": 2}, threads=1)
    first.trainer.run()
    path = tmp_path / "bf16.ckpt"
    first.trainer.save(str(path))
    checkpoint = load_checkpoint(path)
    assert checkpoint.config.precision == "bf16"
    resumed: list[events.Event] = []
    session = open_session({"epochs": 3}, resume=str(path), listener=resumed.append, threads=1)
    assert session.trainer.precision.name == "bf16"
    session.trainer.run()
    started = next(e for e in resumed if isinstance(e, events.Started))
    assert started.precision == f"bf16 ({NATIVE_ENV}=1 says native bfloat16)"
    last = [e for e in resumed if isinstance(e, events.EpochEnd)][-1]
    expected = [e for e in whole if isinstance(e, events.EpochEnd)][-1]
    assert (last.epoch, last.perplexity, last.val_perplexity) == (3, expected.perplexity, expected.val_perplexity)
    text = generate(load_checkpoint(path).build_model(), checkpoint.vocab, "分开", 20)
    assert text.startswith("分开") and len(text) == 22
    # A bf16 run may go on in fp32 (its weights are float32): on a CPU without bfloat16, that is the way on.
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert open_session({"precision": "fp32"}, resume=str(path), threads=1).trainer.precision.name == "fp32"


def test_sweeps_train_with_the_chosen_precision(monkeypatch: pytest.MonkeyPatch, corpus_path: Path) -> None:
    from engine.sweep import train_command, trial_command_overrides
    from tui.cli import parse, sweep_spec

    monkeypatch.setenv(NATIVE_ENV, "1")
    args = parse(["sweep", "--precision", "bf16", "--trials", "1", "--storage", "sqlite:///:memory:"])
    spec = sweep_spec(args)
    overrides = trial_command_overrides(spec, {"lr": 0.002})
    assert open_session(overrides, threads=1).trainer.precision.name == "bf16"
    assert "--precision bf16" in train_command(spec.fixed, {"lr": 0.002})


async def test_the_status_panel_names_a_precision_other_than_the_books(monkeypatch: pytest.MonkeyPatch) -> None:
    from pilot_helpers import wait_for

    from tui.app import RnnTuiApp
    from tui.cli import app_options, parse

    monkeypatch.setenv(NATIVE_ENV, "1")
    fast = ["--hidden", "64", "--threads", "1", "--seed", "0", "--paused"]
    for flags, shown in ((["--precision", "auto"], f"bf16 (auto: {NATIVE_ENV}=1 says native bfloat16)"), ([], None)):
        app = RnnTuiApp(app_options(parse([*fast, *flags])))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, partial(paused, app), "the paused start")
            text = app.main.status.render_status().plain
            if shown:
                assert shown in text, text
            else:  # the book's float32 goes unsaid; only the hint (its own test) names bf16 where it is native
                settings = "\n".join(line for line in text.splitlines() if not line.startswith("hint:"))
                assert "fp32" not in settings and "bf16" not in settings, text


async def test_the_app_says_in_one_line_why_bf16_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pilot_helpers import wait_for

    from tui.app import RnnTuiApp
    from tui.cli import app_options, parse

    monkeypatch.setenv(NATIVE_ENV, "0")
    app = RnnTuiApp(app_options(parse(["--hidden", "64", "--threads", "1", "--paused", "--precision", "bf16"])))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.run_control.status.message_is_error, "the refusal in the status panel")
        status = app.run_control.status
        # The app names the setting by the form's label, dtype.
        assert "dtype bf16" in status.message and "slower than fp32" in status.message
        assert "\n" not in status.message and "Traceback" not in status.message


def test_output_products_kept_in_fp32_are_float32_ones() -> None:
    """LinearCrossEntropy's keep: a product named there runs on float32 operands while the others stay bfloat16 —
    all three kept is the float32 layer bit for bit, and keeping grad_hidden leaves the loss and grad_weight
    exactly bf16's while grad_hidden comes from the float32 weight."""
    from engine.kernels import LinearCrossEntropy

    torch.manual_seed(4)
    rows, hidden_size, vocab = 70, 48, 300
    hidden = torch.randn(rows, hidden_size)
    weight, bias = torch.randn(vocab, hidden_size) * 0.3, torch.randn(vocab)
    targets = torch.randint(0, vocab, (rows,))

    def loss_and_grads(low: torch.dtype | None, keep: frozenset[str] = frozenset()) -> list[torch.Tensor]:
        leaves = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
        loss = LinearCrossEntropy.apply(*leaves, targets, low, keep)
        return [loss, *torch.autograd.grad(loss, leaves)]

    fp32, bf16 = loss_and_grads(None), loss_and_grads(torch.bfloat16)
    every = loss_and_grads(torch.bfloat16, frozenset({"logits", "grad_hidden", "grad_weight"}))
    assert all(torch.equal(a, b) for a, b in zip(every, fp32, strict=True))
    loss, grad_hidden, grad_weight, grad_bias = loss_and_grads(torch.bfloat16, frozenset({"grad_hidden"}))
    assert torch.equal(loss, bf16[0]) and torch.equal(grad_weight, bf16[2]) and torch.equal(grad_bias, bf16[3])
    assert grad_hidden.dtype == torch.float32 and not torch.equal(grad_hidden, bf16[1])
    # closer to float32's (here by a sixth only: most of the difference is bf16's logits, through the softmax)
    assert (grad_hidden - fp32[1]).abs().max() < (bf16[1] - fp32[1]).abs().max()


async def test_the_app_hints_once_that_bf16_is_faster_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    """An fp32 run (the default) on a CPU with native bfloat16: one short line, measured at start, in the Status
    panel (not in Samples: it is not a sample), naming the form's label; none where bf16 is not native or already
    chosen, or for the GRU, whose bf16 misses the quality guard: a GRU in bf16 gets the warning instead."""
    from pilot_helpers import wait_for

    from tui.app import RnnTuiApp
    from tui.cli import app_options, parse

    fast = ["--hidden", "64", "--threads", "1", "--seed", "0", "--paused"]
    hint = r"^hint: dtype bf16: output layer (\d+\.\d× faster|may be faster)$"
    cases: list[tuple[str, list[str], str | None]] = [
        ("1", [], hint),
        ("0", [], None),
        ("1", ["--precision", "bf16"], None),
        ("1", ["--cell", "gru"], None),
        ("1", ["--cell", "gru", "--precision", "bf16"], r"^warning: bf16 misses the quality guard for the GRU \("),
    ]
    for native, flags, expected in cases:
        monkeypatch.setenv(NATIVE_ENV, native)
        app = RnnTuiApp(app_options(parse([*fast, *flags])))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, partial(paused, app), "the paused start")
            notes = [line.plain for line in app.main.samples.written if line.plain.startswith(("hint", "warning"))]
            if expected == hint:  # the Status panel's, on one line (at 80×24 without "hint: "); not a line of samples
                message = app.run_control.status.message
                assert notes == [] and re.match(hint, message), (flags, notes, message)
                shown = app.main.status.render_status().plain.splitlines()
                lines = [line for line in shown if "dtype bf16" in line]
                assert len(lines) == 1 and lines[0].startswith("dtype bf16: output layer"), shown
            elif expected:
                assert len(notes) == 1 and re.match(expected, notes[0]), (flags, notes)
                assert app.run_control.status.message == notes[0]
            else:
                assert notes == [] and "hint" not in app.run_control.status.message, (native, flags, notes)


def test_the_bf16_hint_states_a_steady_median_or_no_figure() -> None:
    """Timings that agree give their median; ratios as far apart as one machine gave run to run (2.1×, 3.8×, 6.3×)
    give no figure at all."""
    from engine.precision import steady_median

    assert steady_median([3.9, 4.1, 4.0, 3.8, 4.2, 4.0, 4.4, 3.7, 4.1]) == pytest.approx(4.0)
    assert steady_median([2.0, 2.2]) == pytest.approx(2.1)
    assert steady_median([2.1, 3.8, 6.3, 2.4, 5.9, 3.1, 6.0, 2.2, 4.5]) is None
    assert steady_median([]) is None
