"""The sample timeline on the real corpus: every report's samples kept with their epoch and live settings, saved in
checkpoints (older ones load without), and a checkpoint saved at a sampling epoch regenerating its samples byte for
byte, through the engine and through `rnn-tui lab timeline --json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine import checkpoint as checkpoints
from engine import events
from engine.lab.copies import TextIndex, sample_copy
from engine.session import open_session
from engine.timeline import regenerate
from tui.main import main

TINY = {"hidden": 16, "max_chars": 2_000, "val_chars": 300, "epochs": 4, "pred_period": 2, "seed": 3}


def test_a_checkpoint_at_a_sampling_epoch_regenerates_its_samples_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "run.ckpt"
    seen: list[events.Event] = []
    session = open_session({**TINY, "temperature": 0.8}, listener=seen.append)
    trainer = session.trainer

    def change_settings_after_the_first_report(event: events.Event) -> None:
        seen.append(event)
        if isinstance(event, events.Samples) and event.epoch == 2:
            trainer.update(temperature=1.5, lr=0.002)

    trainer.listener = change_settings_after_the_first_report
    trainer.run()
    trainer.save(str(ckpt))
    drawn = [e for e in seen if isinstance(e, events.Samples)]
    loaded = checkpoints.load(ckpt)
    # Every report is on the timeline, as it was drawn, with the live settings of its epoch.
    assert [r.epoch for r in loaded.timeline] == [2, 4]
    assert [r.samples for r in loaded.timeline] == [e.samples for e in drawn]
    assert [(r.setting("temperature"), r.setting("lr")) for r in loaded.timeline] == [(0.8, 0.001), (1.5, 0.002)]
    # The weights of epoch 4 and the generator's state before its report draw the same bytes again.
    last = loaded.timeline[-1]
    model = loaded.build_model()
    assert regenerate(model, loaded.vocab, last) == last.samples
    # ...and only with that state: the generator one draw further on samples other text (sampling is random here).
    shifted = torch.Generator()
    shifted.set_state(last.generator)
    torch.rand(1, generator=shifted)
    moved = type(last)(last.epoch, last.samples, last.settings, shifted.get_state())
    assert regenerate(model, loaded.vocab, moved) != last.samples
    # The command-line twin regenerates it too, and lists every report with its longest verbatim copy.
    capsys.readouterr()
    assert main(["lab", "timeline", "--checkpoint", str(ckpt), "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["reproduced"] == {"epoch": 4, "equal": True, "samples": [list(s) for s in last.samples]}
    assert [e["epoch"] for e in view["entries"]] == [2, 4]
    assert view["entries"][1]["settings"]["temperature"] == 1.5
    sample = view["entries"][0]["samples"][0]
    found = sample_copy(TextIndex(session.corpus.text), sample["text"], len(sample["prefix"]))
    assert sample["longest_copy"] == found.longest_copy >= 1 and sample["copied"] == found.copied
    assert sample["generated"] == len(sample["text"]) - len(sample["prefix"])


def test_a_resumed_run_keeps_its_timeline_and_an_old_checkpoint_loads_without_one(tmp_path: Path) -> None:
    ckpt, old = tmp_path / "run.ckpt", tmp_path / "old.ckpt"
    session = open_session(TINY)
    session.trainer.run()
    session.trainer.save(str(ckpt))
    resumed = open_session({**TINY, "epochs": 6}, resume=str(ckpt))
    resumed.trainer.run()
    assert [r.epoch for r in resumed.trainer.timeline()] == [2, 4, 6]
    payload = torch.load(ckpt, weights_only=True)
    del payload["timeline"]  # as checkpoints were saved before the timeline existed
    torch.save(payload, old)
    loaded = checkpoints.load(old)
    assert loaded.timeline == [] and loaded.epoch == 4


def test_a_checkpoint_between_reports_says_why_it_regenerates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "run.ckpt"
    session = open_session({**TINY, "epochs": 3, "pred_period": 2})
    session.trainer.run()  # reports at 2 and at the last epoch, 3
    session.trainer.config = session.trainer.config.with_changes(epochs=5)
    session.trainer.state.timeline.pop()  # as if epoch 3 had not reported: its weights drew no samples
    session.trainer.save(str(ckpt))
    main(["lab", "timeline", "--checkpoint", str(ckpt)])
    out = capsys.readouterr().out
    assert "epoch 2: lr 0.001" in out
    assert "not regenerated: the checkpoint was saved at epoch 3, when no samples were drawn" in out
