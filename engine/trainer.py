"""The training loop of the book's train_and_predict_rnn_pytorch, driveable from another thread.

A Trainer is built from a TrainConfig and a Corpus, then run() trains in the calling thread and
reports Events to a listener. Other threads call pause(), resume(), step(), stop() and update(); the
loop honours them between batches (engine/trainer_controls.py). What an epoch adds to its figures and what is chosen
from them (held-out, best epoch, patience, the test text) is engine/epoch_figures.py; the run's state to continue
from, engine/training_state.py.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import threading
import time
from collections.abc import Iterator

import torch

from engine import checkpoint as checkpoints
from engine import events, schedule
from engine.checkpoint import EpochProgress
from engine.config import TrainConfig
from engine.data.corpus import Corpus, check_length, preprocess
from engine.data.sampling import (
    Batch,
    batches_per_epoch,
    carries_state,
    consecutive_batches,
    random_batches,
    window_batches,
)
from engine.epoch_figures import EpochFigures
from engine.errors import CheckpointError, ConfigError, first_line
from engine.evaluate import Evaluator
from engine.kernels import tune_allocator
from engine.lab.copies import TextIndex
from engine.limits import check_memory, check_threads
from engine.model import CharRNN, detach_state, model_for, state_to_cpu
from engine.optim import Optimizer, make_optimizer
from engine.outputs import OutputError
from engine.precision import Precision, step_context
from engine.precision import choose as choose_precision
from engine.timeline import SampleRecord, draw_samples, live_settings
from engine.trainer_controls import TrainerControls
from engine.training_state import GradNormLog, TrainingState


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; an explicit device must exist."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise ConfigError(
            f"«device» cuda is not available here (torch {torch.__version__}); set «device» to cpu or auto"
        )
    if name == "mps" and not mps:
        raise ConfigError("«device» mps is not available here; set «device» to cpu or auto")
    return torch.device(name)


def device_memory(device: torch.device) -> int | None:
    """Free memory on a CUDA device; None for the CPU (engine.limits reads the system's)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF



class Trainer(TrainerControls, EpochFigures):
    """A run: its model, optimizer and data, checkpoints, the loop. Its controls from other threads are
    engine.trainer_controls', its epochs' held-out, memory and test figures engine.epoch_figures'."""

    def __init__(
        self,
        config: TrainConfig,
        corpus: Corpus,
        listener: events.Listener | None = None,
        threads: int | None = None,
        save_best: str | None = None,
    ) -> None:
        check_length(len(corpus.text), config.batch_size, config.num_steps, config.sampling, len(corpus.held_out))
        self.config = config
        self.save_best = save_best  # where the best held-out epoch's checkpoint is written (None: nowhere)
        self.saved_best: events.EpochEnd | None = None  # the epoch last written to save_best by this trainer
        self.best_save_failure: str | None = None  # why writing save_best failed (it is not tried again)
        self.corpus = corpus
        self.vocab = corpus.vocab
        self.listener = listener or (lambda event: None)
        self.device = resolve_device(config.device)
        # fp32, or bf16 output-layer products where native (engine/precision.py); an unsupported bf16 stops here.
        if config.impl != "fused" and config.precision == "bf16":
            # bf16 lives in the fused output kernel (engine/kernels.py); the book's ways are the fp32 baseline
            raise ConfigError(f"«precision» bf16 needs «impl» fused; «impl» {config.impl} trains in fp32")
        self.precision = choose_precision(config.precision, self.device, cell=config.cell)
        if config.impl != "fused" and self.precision.name != "fp32":  # auto's choice; bf16 itself is refused earlier
            self.precision = Precision(config.precision, "fp32", f"auto: impl {config.impl} trains in fp32")
        check_threads(threads)
        # Before anything is allocated: settings the machine cannot hold are one line with the estimate.
        check_memory(config, len(self.vocab), len(corpus.text), device_memory(self.device))
        if threads:
            torch.set_num_threads(threads)
        tune_allocator()
        self.seed = config.seed if config.seed is not None else new_seed()
        torch.manual_seed(self.seed)  # weights and dropout masks
        self.model = model_for(config, len(self.vocab), impl=config.impl).to(self.device)
        self.optimizer = self._make_optimizer()
        # Separate generators: shuffling and sampling during reports must not shift each other's draws.
        self.shuffle_generator = torch.Generator().manual_seed(self.seed + 1)
        self.sample_generator = torch.Generator().manual_seed(self.seed + 2)
        self.data = torch.tensor(corpus.indices, dtype=torch.long, device=self.device)
        self.batches_per_epoch = batches_per_epoch(config.sampling, len(self.data), config.batch_size, config.num_steps)
        # Held-out evaluation when asked for and the corpus has held-out text (engine/evaluate.py); it draws from
        # no random generator and leaves the model's mode as it was, so training is the same with or without it.
        self.evaluator = Evaluator(config, corpus, self.device) if config.val_chars and corpus.held_out else None
        # The test text, read once the run ends (test_figure): never by early stopping, the best checkpoint or a
        # sweep's ranking, which read the held-out figures only.
        self.tester = (
            Evaluator(config, dataclasses.replace(corpus, held_out=corpus.test), self.device)
            if self.evaluator is not None and len(corpus.test) > 1
            else None
        )
        # The best held-out epoch's weights (on the CPU), kept for the test figure: (epoch, state_dict).
        self.best_weights: tuple[int, dict[str, torch.Tensor]] | None = None
        self._test: tuple[tuple[int, int], events.TestFigure] | None = None  # the last test figure, by position
        self.text_index: TextIndex | None = None  # the training text's suffix array, for the samples' copies
        self.state = TrainingState()
        self.grad_norms = GradNormLog()  # this trainer's steps, for the app (not in checkpoints)
        self._start_controls()  # pause, resume, step, stop and live settings from other threads (TrainerControls)
        # Held while weights change, so a copy for generation is never half-updated.
        self._weights_lock = threading.Lock()

    def _make_optimizer(self) -> Optimizer:
        # engine.optim: torch.optim's Adam (its one fused kernel per step) and SGD, without importing torch._dynamo.
        config = self.config
        weights: list[torch.Tensor] = list(self.model.parameters())
        decoupled = config.decay == "decoupled"
        return make_optimizer(config.optimizer, weights, config.lr, self.device, config.weight_decay, decoupled)

    def copy_model(self) -> CharRNN:
        """A consistent copy of the current weights, for generating while training goes on."""
        with self._weights_lock:
            clone = copy.deepcopy(self.model)
        clone.eval()
        return clone

    # ----- checkpoints -----

    def to_checkpoint(self) -> checkpoints.Checkpoint:
        """A snapshot of the run between two batches: weights, optimizer, RNGs and how far the epoch got."""
        with self._weights_lock:
            carried = self.state.carried
            return checkpoints.Checkpoint(
                config=self.config,
                vocab=self.vocab,
                model_state=copy.deepcopy(self.model.state_dict()),
                optimizer_state=copy.deepcopy(self.optimizer.state_dict()),
                epoch=self.state.epoch,
                history=list(self.state.history),
                seed=self.seed,
                carried=state_to_cpu(carried) if carried is not None else None,
                rng={
                    "torch": torch.get_rng_state(),
                    "shuffle": self.shuffle_generator.get_state(),
                    "sample": self.sample_generator.get_state(),
                },
                corpus=self.corpus.source,
                progress=self.state.progress,
                timeline=list(self.state.timeline),
            )

    def position(self) -> str:
        """Where training stands, as a checkpoint saved now would say: 'epoch 12' or 'batch 3 of 8 of epoch 13'."""
        with self._weights_lock:
            return checkpoints.describe_position(self.state.epoch, self.state.progress, self.batches_per_epoch)

    def save(self, path: str) -> checkpoints.Checkpoint:
        """Write a checkpoint of the run as it is now; return what was written."""
        checkpoint = self.to_checkpoint()
        checkpoints.save(path, checkpoint)
        return checkpoint

    def restore(self, checkpoint: checkpoints.Checkpoint) -> None:
        """Continue from a checkpoint: training goes on exactly as it would have without the break (a checkpoint
        saved mid-epoch finishes that epoch's remaining batches first)."""
        checkpoints.check_vocab(checkpoint.vocab, self.vocab)
        checkpoints.check_progress(checkpoint, self.batches_per_epoch)
        try:
            self.model.load_state_dict(checkpoint.model_state)
            if checkpoint.optimizer_state is not None and checkpoint.config.optimizer == self.config.optimizer:
                self.optimizer.load_state_dict(checkpoint.optimizer_state)
                self._set_optimizer_settings()
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"the checkpoint's model does not fit these settings: {first_line(exc)}") from exc
        carried = checkpoint.carried
        if isinstance(carried, tuple):
            carried = (carried[0].to(self.device), carried[1].to(self.device))
        elif carried is not None:
            carried = carried.to(self.device)
        self.state = TrainingState(
            checkpoint.epoch, list(checkpoint.history), carried, checkpoint.progress, list(checkpoint.timeline)
        )
        self.seed = checkpoint.seed
        torch.set_rng_state(checkpoint.rng["torch"])
        self.shuffle_generator.set_state(checkpoint.rng["shuffle"])
        self.sample_generator.set_state(checkpoint.rng["sample"])

    # ----- the loop -----

    def run(self) -> None:
        """Train until the configured epochs are done or stop() is called; report through the listener.

        Never raises for a training error: it becomes a Failed event, so a UI thread cannot die silently.
        """
        try:
            self._run()
        except Exception as exc:
            self.listener(events.Failed(self.state.epoch + 1, 0, f"training failed: {first_line(exc)}"))

    def _run(self) -> None:
        config = self.config
        self.listener(
            events.Started(
                start_epoch=self.state.epoch,
                epochs=config.epochs,
                batches_per_epoch=self.batches_per_epoch,
                device=str(self.device),
                corpus=self.corpus.source,
                vocab_size=len(self.vocab),
                num_chars=len(self.corpus.text),
                seed=self.seed,
                held_out_chars=len(self.corpus.held_out) if self.evaluator is not None else 0,
                precision=self.precision.describe(),
            )
        )
        reason = ""
        while self.state.epoch < self.config.epochs:
            if not self._wait_if_paused():
                break
            reason = self.patience_exhausted()
            if reason:
                break
            outcome = self._train_epoch(self.state.epoch + 1)
            if outcome is None:  # stopped or failed mid-epoch
                return
            outcome = self._evaluated(outcome)
            with self._weights_lock:  # a checkpoint taken meanwhile sees the epoch either unfinished or done
                self.state.epoch = outcome.epoch
                self.state.history.append(outcome)
                self.state.progress = None
            self._keep_if_best(outcome)
            reason = self.patience_exhausted()
            last = outcome.epoch == self.config.epochs or bool(reason)
            if last:
                outcome = self._tested(outcome)
                with self._weights_lock:
                    self.state.history[-1] = outcome
            samples = None
            if outcome.epoch % self.config.pred_period == 0 or last:
                # Sampled before the epoch is told, so its record (--metrics) carries what the samples copy.
                samples = self._report_samples(outcome.epoch)
                outcome, found = self._remembered(outcome, samples)
                with self._weights_lock:
                    self.state.history[-1] = outcome
            self.listener(outcome)
            self._save_if_best(outcome)
            if samples is not None:
                self.listener(events.Samples(outcome.epoch, samples, found.samples))
            if reason:
                break
            self._step_done()
        stopped = self.state.epoch < self.config.epochs and not reason
        self._finish(self.state.epoch, stopped=stopped, reason=reason)

    def _finish(self, epoch: int, stopped: bool, reason: str = "") -> None:
        test = self.test_figure()
        history = self.state.history
        if test is not None and history and history[-1].test_perplexity is None:  # stopped: the last record has it
            with self._weights_lock:
                history[-1] = dataclasses.replace(history[-1], test_perplexity=test.perplexity, test_epoch=test.epoch)
        self.listener(events.Finished(epoch, stopped=stopped, reason=reason, test=test))

    def _save_if_best(self, outcome: events.EpochEnd) -> None:
        """Write the checkpoint of an epoch that is the best held-out so far to save_best (an ordinary checkpoint)."""
        if self.save_best is None or outcome.val_perplexity is None:
            return
        best = self.best_epoch()
        if best is not None and best.epoch == outcome.epoch:
            try:
                self.save(self.save_best)
            except OutputError as exc:  # a full disk must not end the run: training goes on, the failure is told
                self.best_save_failure = str(exc)
                self.save_best = None
                return
            self.saved_best = best

    def samples(self) -> tuple[tuple[str, str], ...]:
        """(prefix, prefix + generated) per configured prefix, each read as the corpus was (d2l-en: letters only,
        lower case); a prefix with characters outside the vocabulary is skipped."""
        config = self.config
        read = [preprocess(prefix, config.preset) if self.vocab.has_unk else prefix for prefix in config.prefixes]
        prefixes = tuple(prefix for prefix in read if prefix and not self.vocab.unknown(prefix))
        generator = self.sample_generator
        return draw_samples(self.model, self.vocab, prefixes, config.pred_len, config.temperature, generator)

    def _report_samples(self, epoch: int) -> tuple[tuple[str, str], ...]:
        """The report's samples, kept on the timeline with the generator's state before them (engine/timeline.py)."""
        before = self.sample_generator.get_state()
        drawn = self.samples()
        record = SampleRecord(epoch, drawn, live_settings(self.config), before)
        with self._weights_lock:  # a checkpoint taken meanwhile has the record or not, never half of it
            self.state.timeline.append(record)
        return drawn

    def timeline(self) -> tuple[SampleRecord, ...]:
        """Every report's samples so far (a copy: callable from any thread)."""
        with self._weights_lock:
            return tuple(self.state.timeline)

    def scheduled_lr(self, step: int) -> float:
        """The learning rate for the batch at step (1-based, of the whole run) under --schedule."""
        config = self.config
        total = config.epochs * self.batches_per_epoch
        return config.lr * schedule.factor(config.schedule, self.state.history, step - 1, total)

    def _batches(self) -> Iterator[Batch]:
        config = self.config
        if config.sampling == "consecutive":
            return consecutive_batches(self.data, config.batch_size, config.num_steps)
        if config.sampling == "windows":
            return window_batches(self.data, config.batch_size, config.num_steps, self.shuffle_generator)
        return random_batches(self.data, config.batch_size, config.num_steps, self.shuffle_generator)

    @property
    def divergence_loss(self) -> float:
        """Ten times the loss of guessing uniformly: a model this far off has diverged, finite or not."""
        return 10 * math.log(len(self.vocab))

    def _divergence_message(self, loss: float, epoch: int, batch: int) -> str:
        step = (epoch - 1) * self.batches_per_epoch + batch
        return (
            f"training diverged at epoch {epoch}, batch {batch} (step {step}): loss {loss:.4g} (uniform guessing gives "
            f"{math.log(len(self.vocab)):.2f}) with {self.config.optimizer} at lr {self.config.lr:g}; "
            "the weights are those from before this batch; lower the learning rate or clip"
        )

    def _train_epoch(self, epoch: int) -> events.EpochEnd | None:
        model, optimizer = self.model, self.optimizer
        model.train()
        # The state is carried from batch to batch only by the consecutive sampler, and not with --state batch;
        # --state epoch starts each epoch from a zero state, carry (the book's v1) keeps it across epochs too.
        carry = carries_state(self.config.sampling) and self.config.state != "batch"
        progress = self.state.progress
        if progress is None:  # a fresh epoch
            progress = EpochProgress(0, 0.0, 0, 0.0, self.shuffle_generator.get_state())
            if self.config.state != "carry":
                with self._weights_lock:
                    self.state.carried = None
        else:  # resumed mid-epoch: the same order of batches, the trained ones skipped
            self.shuffle_generator.set_state(progress.shuffle_state)
        loss_sum, chars, seconds = progress.loss_sum, progress.chars, progress.seconds
        # Σ and max of the steps' gradient norms before clipping, the steps clipped, the steps (EpochEnd.grad_norm)
        grad_sum, grad_max, clipped, steps = progress.grad_sum, progress.grad_max, progress.clipped, progress.steps
        for batch_number, (inputs, targets) in enumerate(self._batches(), start=1):
            if batch_number <= progress.batches:
                continue
            if batch_number > progress.batches + 1 and not self._wait_if_paused():
                self._finish(epoch - 1, stopped=True)
                return None
            started = time.perf_counter()
            step = (epoch - 1) * self.batches_per_epoch + batch_number  # of the whole run, as Failed and GradNorm say
            state = detach_state(self.state.carried) if carry and self.state.carried is not None else None
            with step_context(self.precision, self.device):
                loss, new_state = model.loss(
                    inputs, targets, state, self.precision.output_dtype, self.precision.keep_fp32
                )
                # The one host sync per batch: a diverged loss must stop training before it reaches the weights.
                loss_value = loss.item()
                if not math.isfinite(loss_value) or loss_value > self.divergence_loss:
                    message = self._divergence_message(loss_value, epoch, batch_number)
                    self.listener(events.Failed(epoch, batch_number, message, step))
                    return None
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            record = self._clip(epoch, step)
            if not math.isfinite(record.before):  # a NaN/inf gradient would reach every weight through the step
                self.listener(events.Failed(epoch, batch_number, self._gradient_message(record, batch_number), step))
                return None
            self.grad_norms.append(record)
            grad_sum += record.before
            grad_max = max(grad_max, record.before)
            clipped += record.clipped
            steps += 1
            count = targets.numel()
            loss_sum += loss_value * count  # as the book sums l.item() * y.shape[0]
            chars += count
            if self.config.schedule != "constant":
                rate = self.scheduled_lr(step)
                for group in optimizer.param_groups:
                    group["lr"] = rate
            with self._weights_lock:  # weights, carried state and progress change together for a checkpoint
                optimizer.step()
                if carry:
                    self.state.carried = new_state
                seconds += time.perf_counter() - started
                self.state.progress = EpochProgress(
                    batch_number, loss_sum, chars, seconds, progress.shuffle_state, grad_sum, grad_max, clipped, steps
                )
            self.listener(events.BatchDone(epoch, batch_number, self.batches_per_epoch))
        if carry and self.state.carried is not None:
            self.state.carried = detach_state(self.state.carried)
        try:
            perplexity = math.exp(loss_sum / chars)
        except OverflowError:
            perplexity = float("inf")
        config = self.config
        return events.EpochEnd(
            epoch,
            perplexity,
            seconds,
            chars,
            config.lr,
            config.clip,
            weight_decay=config.weight_decay,
            decay=config.decay,
            scheduled_lr=self.optimizer.param_groups[0]["lr"] if config.schedule != "constant" else None,
            grad_norm=grad_sum / steps if steps else None,
            grad_norm_max=grad_max if steps else None,
            clipped_share=clipped / steps if steps else None,
        )

    def _clip(self, epoch: int, step: int) -> events.GradNorm:
        """Measure the gradients' global L2 norm, clip them to «clip» (0: not), and say what was done.

        The norm is computed with clip 0 too (foreach: one kernel per group of tensors), and read with one host sync:
        it must be known finite before the optimizer step, as the loss is.
        """
        clip = self.config.clip
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        total = torch.nn.utils.get_total_norm(grads, foreach=True)
        if clip > 0:
            # Global L2 norm over all gradients, as the book's grad_clipping means to do (torch's clip_grad_norm_).
            torch.nn.utils.clip_grads_with_norm_(self.model.parameters(), clip, total, foreach=True)
        before = total.item()
        # torch's own factor: θ / (norm + 1e-6), at most 1 (the gradients were multiplied by it).
        scale = min(1.0, clip / (before + 1e-6)) if clip > 0 and math.isfinite(before) else 1.0
        return events.GradNorm(step, epoch, before, before * scale, clip, scale < 1.0)

    def _gradient_message(self, record: events.GradNorm, batch: int) -> str:
        last = self.grad_norms.since(record.step - 2)
        before = f" (the step before: {last[-1].before:.4g})" if last else ""
        return (
            f"training diverged at epoch {record.epoch}, batch {batch} (step {record.step}): gradient norm "
            f"{record.before:.4g}{before} with {self.config.optimizer} at lr {self.config.lr:g}; the weights are "
            "those from before this batch; lower the learning rate or clip"
        )
