"""Shared fixtures: the real corpus, found as the product finds it, so a fresh clone can run the tests.

Order: $RNN_TUI_CORPUS, ../shared/data/ beside the project (the team's and CI's copy), data/, the user's cache,
else one download (sha256 verified, from $RNN_TUI_CORPUS_URL when set) into the user's cache. Without any of
these the tests that read the corpus are skipped, each with one line saying how to get it (NO_CORPUS), and the
rest run: a test reads it through the corpus fixtures below (corpus_path, corpus, book_config), or is named in
CORPUS_TESTS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.data.corpus import CORPUS_ENV, DEFAULT_CORPUS_NAME, Corpus, load_corpus
from engine.errors import CorpusError
from engine.precision import NATIVE_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = PROJECT_ROOT.parent / "shared" / "data" / DEFAULT_CORPUS_NAME


NO_CORPUS = (
    f"no corpus: this test reads the book's {DEFAULT_CORPUS_NAME}; put it in data/ or set ${CORPUS_ENV} to its path "
    "(README, Get the corpus)"
)

# The tests that read the corpus without asking for a fixture (they hand BOOK_CORPUS to a process, or train through
# $RNN_TUI_CORPUS): a module's name (all its tests) or module::function. Skipped without the corpus. Found by running
# the suite with no corpus (README, Test): without it these read the built-in corpus instead and fail.
CORPUS_TESTS = frozenset(
    {
        "test_app::test_generate_known_traditional_and_unknown_prefixes",
        "test_app::test_save_then_load_for_generation",
        "test_app::test_training_advances_and_panels_show_it",
        "test_app_faults::test_a_signal_after_a_save_writes_no_rescue_file",
        "test_app_faults::test_form_errors_follow_the_typing_and_inert_settings_and_unsampled_prefixes_are_named",
        "test_app_robust",
        "test_clipping_app::test_ctrl_g_shows_every_steps_gradient_norm_against_theta_and_back",
        "test_convert",
        "test_download::test_fresh_machine_downloads_then_trains",
        "test_faults::test_a_disk_too_small_for_the_checkpoint_is_refused_before_training",
        "test_faults::test_a_setting_that_does_nothing_is_named",
        "test_faults::test_metrics_on_a_full_disk_are_a_warning_and_the_run_goes_on",
        "test_fit_small::test_a_paused_run_names_f6_where_it_costs_no_figure",
        "test_fit_small::test_the_status_panel_shows_the_gradient_and_speed_and_f9_fits",
        "test_heldout::test_held_out_settings_that_leave_nothing_are_one_line_errors",
        "test_heldout::test_the_vocabulary_a_setting_would_give_is_read_without_a_run",
        "test_heldout_app::test_real_runs_show_held_out_figures_and_the_english_preset_trains_on_the_time_machine",
        "test_hostile_visitor",
        "test_insight_views::test_next_character_view_explains_the_generated_text",
        "test_insight_views::test_next_character_view_generates_greedy_when_nothing_was_generated",
        "test_insight_views::test_next_character_view_samples_without_touching_torchs_global_generator",
        "test_jupyterhub",
        "test_lab_insight_app::test_f4_shades_earlier_characters_by_saliency_and_f9_colours_a_gate_unit",
        "test_lesson_switch::test_the_server_tells_the_teacher_where_other_lessons_rows_go",
        "test_lessons::test_clipping_off_diverges_and_the_observation_says_where",
        "test_lessons::test_each_lesson_runs_short_and_observes_its_own_numbers",
        "test_lessons::test_serve_lesson_gives_every_seat_the_lesson_and_one_csv",
        "test_lessons_app::test_a_lesson_run_ends_with_its_observation_and_the_timeline_scrubs_its_reports",
        "test_precision::test_cli_start_up_line_says_the_precision",
        "test_precision::test_the_app_hints_once_that_bf16_is_faster_where_native",
        "test_serve_browser",
        "test_serve_lifecycle",
        "test_served",
        "test_sweep::test_a_killed_command_is_noticed_by_the_other_and_its_trial_run_again",
        "test_sweep::test_a_study_refuses_another_corpus_space_or_epochs_and_a_read_only_file_is_one_line",
        "test_timeline::test_a_checkpoint_at_a_sampling_epoch_regenerates_its_samples_byte_for_byte",
        "test_timeline::test_a_checkpoint_between_reports_says_why_it_regenerates_nothing",
    }
)


def find_test_corpus() -> Path | None:
    """The book's corpus for the tests; downloads it into the user's cache at most once. None: not to be had."""
    from engine.data.download import corpus_cache_dir, download_corpus

    explicit = os.environ.get(CORPUS_ENV)
    if explicit:
        if not Path(explicit).is_file():
            pytest.exit(f"${CORPUS_ENV} is {explicit}, which is not a file", returncode=2)
        return Path(explicit)
    for candidate in (SHARED_CORPUS, PROJECT_ROOT / "data" / DEFAULT_CORPUS_NAME):
        if candidate.is_file():
            return candidate
    try:  # a valid cached copy is returned without touching the network
        return download_corpus(cache_dir=corpus_cache_dir())
    except CorpusError:
        return None


# Found once, before any test changes the environment. Without it, BOOK_CORPUS names where it would be (data/), so
# the modules that import it still load; their tests are skipped.
FOUND_CORPUS = find_test_corpus()
BOOK_CORPUS = FOUND_CORPUS or PROJECT_ROOT / "data" / DEFAULT_CORPUS_NAME

# Every machine looks the same to the tests: no native bfloat16 unless a test says otherwise (tests/test_precision.py);
# else on a CPU with it each fp32 app run notes a measured, varying bf16 speed-up (snapshots would differ per machine).
os.environ.setdefault(NATIVE_ENV, "0")


def pytest_report_header() -> str:
    return f"corpus: {FOUND_CORPUS}" if FOUND_CORPUS else "corpus: none found; the tests that read it are skipped"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FOUND_CORPUS is None:
        for item in items:
            module = item.module.__name__ if isinstance(item, pytest.Function) and item.module is not None else ""
            if {module, f"{module}::{getattr(item, 'originalname', item.name)}"} & CORPUS_TESTS:
                item.add_marker(pytest.mark.skip(reason=NO_CORPUS))


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    if FOUND_CORPUS is None:
        pytest.skip(NO_CORPUS)
    return FOUND_CORPUS


@pytest.fixture(scope="session")
def corpus(corpus_path: Path) -> Corpus:
    return load_corpus(corpus_path, 10_000)


@pytest.fixture
def book_config(corpus_path: Path) -> TrainConfig:
    return TrainConfig(corpus=str(corpus_path), seed=0)


@pytest.fixture(autouse=True)
def _corpus_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests never download and never write to the user's cache.
    if FOUND_CORPUS is None:
        monkeypatch.delenv("RNN_TUI_CORPUS", raising=False)
    else:
        monkeypatch.setenv("RNN_TUI_CORPUS", str(FOUND_CORPUS))
    monkeypatch.setenv("RNN_TUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RNN_TUI_CORPUS_URL", "http://127.0.0.1:9/unreachable")
