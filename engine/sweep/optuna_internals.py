"""Every use of Optuna beyond its public API, in one place (tests/test_sweep_internals.py checks each one).

Optuna's public API has no way to record a heartbeat that survives an outage, to read each running trial's last
heartbeat (its own `_get_stale_trial_ids` judges every trial by the reader's one grace period), or to add a study
attribute only when it is absent (set_study_user_attr overwrites, so two commands creating one study would both
"win"). These functions do it with Optuna's storage internals: its RDBStorage (`_backend` of the cached storage a
study holds), the heartbeat base class `optuna.storages._heartbeat.BaseHeartbeat`, and the SQLAlchemy models of
`optuna.storages._rdb.models`. pyproject.toml bounds Optuna to the releases these were checked against
(TESTED_BELOW); a release that changes them fails tests/test_sweep_internals.py loudly.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage
    from optuna.trial import FrozenTrial

TESTED_BELOW = "5.2"  # the upper bound in pyproject.toml: optuna>=4.9,<5.2


class OptunaChanged(RuntimeError):
    """An Optuna release no longer has an internal this module relies on."""


def rdb_storage(study: optuna.Study) -> RDBStorage:
    """The RDBStorage under a study (Optuna wraps it in its cached storage)."""
    from optuna.storages import RDBStorage

    storage: Any = study._storage
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        raise OptunaChanged(f"study {study.study_name!r}: its storage is {type(backend).__name__}, not an RDBStorage")
    return backend


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna's cache over the RDBStorage): a trial's own process
    changes its trial through it, so the cache stays true."""
    storage: optuna.storages.BaseStorage = study._storage
    return storage


def study_id(study: optuna.Study) -> int:
    return int(study._study_id)


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    return int(trial._trial_id)


def record_heartbeat(storage: RDBStorage, trial: int) -> None:
    """One heartbeat of a running trial, stamped with the database's clock."""
    storage.record_heartbeat(trial)


def heartbeat_ages(storage: RDBStorage, study: int) -> dict[int, float]:
    """Seconds since each running trial of the study last beat, by the database's clock (a trial that has not beaten
    yet is left out: it was asked for a moment ago)."""
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    with storage.scoped_session() as session:
        now = session.execute(sqlalchemy.func.now()).scalar()
        rows = (
            session.query(models.TrialModel.trial_id, models.TrialHeartbeatModel.heartbeat)
            .join(models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
            .filter(models.TrialModel.study_id == study, models.TrialModel.state == TrialState.RUNNING)
            .all()
        )
    if now is None:
        return {}
    now = now.replace(tzinfo=None)  # PostgreSQL's now() is aware, the stored heartbeats naive (as Optuna does)
    ages: dict[int, float] = {}
    for trial, beat in rows:
        age: timedelta = now - beat.replace(tzinfo=None)
        ages[int(trial)] = age.total_seconds()
    return ages


def add_study_attr_once(storage: RDBStorage, study: int, key: str, value: Any) -> bool:
    """Add a study user attribute unless it exists, atomically (the table's unique (study, key) decides between
    two processes racing); True when this call added it."""
    import sqlalchemy.exc
    from optuna.storages._rdb import models

    table = models.StudyUserAttributeModel.__table__
    try:
        with storage.engine.begin() as connection:
            connection.execute(table.insert().values(study_id=study, key=key, value_json=json.dumps(value)))
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def check_internals() -> list[str]:
    """What this module uses of Optuna that the installed release lacks or changed (empty: all there), found by
    using each on an in-memory study: a trial's heartbeat read back, an attribute added once and refused twice."""
    import optuna

    problems: list[str] = []
    try:
        from optuna.storages._heartbeat import BaseHeartbeat
        from optuna.storages._rdb import models
    except ImportError as exc:
        return [f"an internal module is gone: {exc}"]
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    if not isinstance(storage, BaseHeartbeat):
        problems.append("RDBStorage is no longer a BaseHeartbeat")
    study = optuna.create_study(storage=storage)
    try:
        if rdb_storage(study) is not storage:
            problems.append("Study._storage no longer wraps the RDBStorage given")
        trial = study.ask()
        record_heartbeat(storage, trial_id(trial))
        ages = heartbeat_ages(storage, study_id(study))
        if list(ages) != [trial_id(trial)] or not 0 <= ages[trial_id(trial)] < 60:
            problems.append(f"trial_heartbeats read back wrong: {ages}")
        if not add_study_attr_once(storage, study_id(study), "k", 1) or add_study_attr_once(
            storage, study_id(study), "k", 2
        ):
            problems.append("study_user_attributes: an attribute was not added once, or was added twice")
        if study.user_attrs.get("k") != 1:
            problems.append(f"study_user_attributes: value_json read back as {study.user_attrs.get('k')!r}")
    except (AttributeError, TypeError, OptunaChanged) as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    if "unique" not in repr(getattr(models.StudyUserAttributeModel, "__table_args__", "")).lower():
        problems.append("study_user_attributes lost its unique (study_id, key) constraint")
    return problems
