"""The module maps of the architecture page (docs/architecture.md, the tables under "The engine" and "The
interface") match the tree: every file or folder they list exists, and every module and folder of engine/ and tui/
is listed, inside the front ends' folders (tui/app/, tui/cli/) by its path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_map(package: str) -> list[str]:
    """The first column's names of the `| module | concern |` table that follows the package's section."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    heading = {"engine": "\n## The engine (`engine/`)\n", "tui": "\n## The interface (`tui/`)\n"}[package]
    section = text[text.index(heading) :]
    table = section[section.index("| module | concern |") :].split("\n\n")[0]
    names: list[str] = []
    for row in table.splitlines()[2:]:
        names += re.findall(r"`([^`]+)`", row.split("|")[1])
    return names


@pytest.mark.parametrize("package", ["engine", "tui"])
def test_every_listed_module_exists(package: str) -> None:
    missing = [name for name in module_map(package) if not (ROOT / package / name).exists()]
    assert not missing, f"docs/architecture.md lists {missing} under {package}/, not in the tree"


@pytest.mark.parametrize("package", ["engine", "tui"])
def test_every_module_is_listed(package: str) -> None:
    listed = {name.rstrip("/") for name in module_map(package)} | {name.split("/")[0] for name in module_map(package)}
    entries = [
        path.name
        for path in sorted((ROOT / package).iterdir())
        if not path.name.startswith(("_", ".")) and (path.is_dir() or path.suffix in (".py", ".tcss"))
    ]
    unlisted = [name for name in entries if name not in listed]
    assert not unlisted, f"docs/architecture.md's module map of {package}/ misses {unlisted}"
    assert len(entries) > 5  # the walk sees the package


@pytest.mark.parametrize("front_end", ["app", "cli"])
def test_every_module_of_a_front_end_is_listed(front_end: str) -> None:
    """Inside tui/'s front-end folders every module is listed by its path (app/run_control.py), or by a folder of
    its own that the map lists whole (app/screens/, cli/lab/): a row naming the folder alone does not do."""
    names = [name.rstrip("/") for name in module_map("tui")]
    whole = {
        name for name in names if (ROOT / "tui" / name).is_dir() and not any(n.startswith(name + "/") for n in names)
    }
    folder = ROOT / "tui" / front_end
    entries = [
        path.relative_to(ROOT / "tui").as_posix()
        for path in sorted(folder.rglob("*"))
        if not path.name.startswith(("_", ".")) and path.suffix in (".py", ".tcss")
    ]
    unlisted = [
        entry
        for entry in entries
        if entry not in names and not any(entry.startswith(folder_name + "/") for folder_name in whole)
    ]
    assert not unlisted, f"docs/architecture.md's module map of tui/ misses {unlisted}"
    assert len(entries) > 10  # the walk sees the folder
