"""The trainer's controls, called from other threads: pause, resume, step, stop and live settings (update), honoured
by the training loop between batches. A part of engine.trainer.Trainer (a mixin), over the attributes listed here."""

from __future__ import annotations

import threading

from engine import events
from engine.config import LIVE_SETTINGS, SettingValue, TrainConfig
from engine.errors import ConfigError
from engine.optim import SGD, Optimizer
from engine.training_state import TrainingState


class TrainerControls:
    """pause(), resume(), step(), stop() and update() from any thread; the loop's side of them (_wait_if_paused,
    _step_done). The condition guards every control."""

    config: TrainConfig
    listener: events.Listener
    state: TrainingState
    optimizer: Optimizer

    def _start_controls(self) -> None:
        self._control = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._step_requested = False
        self._pending: dict[str, SettingValue] = {}

    def pause(self) -> None:
        with self._control:
            self._paused = True
            self._step_requested = False
            self._control.notify_all()

    def resume(self) -> None:
        with self._control:
            self._paused = False
            self._step_requested = False
            self._control.notify_all()

    def step(self) -> None:
        """While paused: train to the end of the next epoch boundary, then pause again."""
        with self._control:
            if self._paused:
                self._step_requested = True
                self._control.notify_all()

    def stop(self) -> None:
        with self._control:
            self._stop_requested = True
            self._control.notify_all()

    def update(self, **changes: SettingValue) -> TrainConfig:
        """Queue live settings (engine.config.LIVE_SETTINGS) for the next batch.

        Validates at once, so the caller learns of a bad value here; returns the config they will give.
        """
        not_live = sorted(set(changes) - set(LIVE_SETTINGS))
        if not_live:
            raise ConfigError(f"{', '.join(not_live)} cannot change while training; restart with the new value")
        with self._control:
            merged = {**self._pending, **changes}
            new_config = self.config.with_changes(**merged)
            # A value the trainer has already, with no other value queued for that setting, is no change (a form
            # field left without editing): nothing is applied, and no SettingsApplied is told.
            merged = {k: v for k, v in merged.items() if k in self._pending or getattr(self.config, k) != v}
            self._pending = merged
            self._control.notify_all()
        return new_config

    @property
    def paused(self) -> bool:
        return self._paused

    def _step_done(self) -> None:
        """An epoch has ended: after step() the run pauses again."""
        with self._control:
            if self._step_requested:
                self._step_requested = False
                self._paused = True

    def _wait_if_paused(self) -> bool:
        """Block while paused (announcing it); apply pending settings. False when a stop was asked for."""
        with self._control:
            if self._paused and not self._stop_requested:
                self.listener(events.Paused(self.state.epoch))
                while self._paused and not self._step_requested and not self._stop_requested:
                    self._control.wait()
                if not self._stop_requested:
                    self.listener(events.Resumed(self.state.epoch))
            if self._pending:
                self._apply_pending()
            return not self._stop_requested

    def _apply_pending(self) -> None:
        changes, self._pending = self._pending, {}
        self.config = self.config.with_changes(**changes)
        self._set_optimizer_settings()
        self.listener(events.SettingsApplied(tuple(sorted(changes.items())), self.config))

    def _set_optimizer_settings(self) -> None:
        """The live settings the optimizer holds itself, as the config says now (a checkpoint's are its own)."""
        decoupled = self.config.decay == "decoupled"
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr
            group["weight_decay"] = self.config.weight_decay
            if "decoupled_weight_decay" in group:  # Adam's; engine.optim.SGD keeps it beside its group
                group["decoupled_weight_decay"] = decoupled
        if isinstance(self.optimizer, SGD):
            self.optimizer.decoupled = decoupled
