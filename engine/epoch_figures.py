"""What an epoch adds to its figures beyond the training loss, and what is chosen from them: held-out evaluation, the
gates' saturation, the memory figures (horizon, copies), the best held-out epoch and patience; and the test text's
figure, reported once, never read by a choice. A part of engine.trainer.Trainer (a mixin), over the attributes listed
here."""

from __future__ import annotations

import copy
import dataclasses
import threading

import torch

from engine import events
from engine.config import TrainConfig
from engine.data.corpus import Corpus, Vocab
from engine.evaluate import Evaluator
from engine.lab.copies import Copies, TextIndex, copies, index_for
from engine.lab.gates import EPOCH_EVERY, gate_saturation
from engine.lab.horizon import perplexity
from engine.model import CharRNN
from engine.training_state import TrainingState


class EpochFigures:
    """The held-out, memory and test figures of the run's epochs, and the choices read from the held-out ones."""

    config: TrainConfig
    corpus: Corpus
    vocab: Vocab
    model: CharRNN
    data: torch.Tensor
    state: TrainingState
    evaluator: Evaluator | None
    tester: Evaluator | None
    best_weights: tuple[int, dict[str, torch.Tensor]] | None
    _test: tuple[tuple[int, int], events.TestFigure] | None
    text_index: TextIndex | None
    _weights_lock: threading.Lock

    # ----- the test text: reported once, never read by a choice -----

    def _keep_if_best(self, outcome: events.EpochEnd) -> None:
        """Keep a copy of the weights of an epoch that is the best held-out so far (for the test figure)."""
        best = self.best_epoch()
        if self.tester is None or best is None or best.epoch != outcome.epoch:
            return
        with self._weights_lock:
            weights = {name: value.detach().to("cpu", copy=True) for name, value in self.model.state_dict().items()}
        self.best_weights = (outcome.epoch, weights)

    def test_figure(self) -> events.TestFigure | None:
        """The test text's perplexity at the best held-out epoch's weights when this trainer kept them (a resumed
        run's best may be from before it), else at the weights as they are; None without a test text or an epoch.

        Called when a run ends; nothing that chooses calls it.
        """
        if self.tester is None or not self.state.history:
            return None
        position = (self.state.epoch, self.state.progress.batches if self.state.progress else 0)
        if self._test is not None and self._test[0] == position:
            return self._test[1]
        best = self.best_epoch()
        kept = self.best_weights
        if kept is not None and best is not None and kept[0] == best.epoch:
            with self._weights_lock:
                model = copy.deepcopy(self.model)
            model.load_state_dict(kept[1])
            epoch, is_best = kept[0], True
        else:
            model, epoch, is_best = self.model, self.state.epoch, False
        with self._weights_lock:
            result = self.tester(model).held_out
        figure = events.TestFigure(result.perplexity, epoch, is_best, len(self.corpus.test), result.unseen_share)
        self._test = (position, figure)
        return figure

    def _tested(self, outcome: events.EpochEnd) -> events.EpochEnd:
        """The last epoch's figures with the test figure added (unchanged without a test text)."""
        figure = self.test_figure()
        if figure is None:
            return outcome
        return dataclasses.replace(outcome, test_perplexity=figure.perplexity, test_epoch=figure.epoch)

    # ----- held-out evaluation, best epoch, patience -----

    def _evaluated(self, outcome: events.EpochEnd) -> events.EpochEnd:
        """The epoch's figures with the held-out ones added (unchanged when evaluation is off)."""
        if self.evaluator is None:
            return outcome
        result = self.evaluator(self.model)
        return dataclasses.replace(
            outcome,
            val_perplexity=result.held_out.perplexity,
            fresh_perplexity=result.fresh.perplexity,
            val_unseen_share=result.held_out.unseen_share,
            eval_seconds=result.seconds,
            gate_saturation=self._gate_saturation(),
        )

    def _gate_saturation(self) -> dict[str, dict[str, list[float]]] | None:
        """The gates' saturated shares over the held-out text (GRU and LSTM), in stretches as held-out evaluation reads
        it, a quarter of them (EPOCH_EVERY)."""
        if self.config.cell not in ("gru", "lstm"):
            return None
        # Forward only, on the training thread between epochs: nothing else changes the weights meanwhile.
        gates = gate_saturation(self.model, self.vocab, self.corpus.held_out, self.config.num_steps, EPOCH_EVERY)
        return {name: shares.to_json() for name, shares in gates.gates.items()}

    def _remembered(
        self, outcome: events.EpochEnd, samples: tuple[tuple[str, str], ...]
    ) -> tuple[events.EpochEnd, Copies]:
        """A sampling epoch's figures with the memory ones added: the horizon's long-context end (with held-out
        evaluation on) and how much of the samples is copied from the training text."""
        if self.text_index is None:  # built at the first sampling epoch: a run that never samples never pays for it
            self.text_index = index_for(self.corpus.text)  # shared with the timeline pane's reading
        found = copies(self.text_index, samples)
        horizon = None
        if self.evaluator is not None:
            horizon = perplexity(self.model, self.data.cpu(), len(self.data))
        remembered = dataclasses.replace(
            outcome,
            horizon_perplexity=horizon,
            copy_longest=found.longest if samples else None,
            copy_share=found.share if samples else None,
        )
        return remembered, found

    def best_epoch(self) -> events.EpochEnd | None:
        """The epoch with the lowest held-out perplexity so far (None when there is none)."""
        return events.best_held_out(self.state.history)

    def patience_exhausted(self) -> str:
        """Why the run should stop now by --patience (a sentence), or "" when it should go on."""
        patience = self.config.patience
        best = self.best_epoch()
        if not patience or best is None:
            return ""
        waited = self.state.epoch - best.epoch
        if waited < patience:
            return ""
        return (
            f"stopped early: held-out perplexity has not improved for {waited} epoch{'s' * (waited != 1)} "
            f"(patience {patience}); the best was {best.val_perplexity:f} at epoch {best.epoch}"
        )
