"""The README and the docs site: the README stays short and its links lead somewhere; the flag reference is generated
from the parsers and the settings' declarations and names every flag of every command. (`mkdocs build --strict` in
.ci/run checks the site's own links and anchors.)"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from engine.config import SETTINGS
from tui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def reference_hook() -> ModuleType:
    """docs/hooks/reference.py, the mkdocs hook, imported by path as mkdocs imports it."""
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def every_command(parser: argparse.ArgumentParser, name: str = "rnn-tui") -> dict[str, argparse.ArgumentParser]:
    found = {name: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found.update(every_command(sub, f"{name} {sub_name}"))
    return found


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_the_readmes_links_lead_to_files_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [target.split("#")[0] for target in targets if not target.startswith(("http://", "https://", "#"))]
    assert "docs/images/main-100x30.svg" in local  # the picture
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, f"README.md links to {missing}, which do not exist"
    anchors = [target[1:] for target in targets if target.startswith("#")]
    titles = re.findall(r"^#+ (.+)$", text, re.M)
    headings = {re.sub(r"[^\w\- ]", "", title).strip().lower().replace(" ", "-") for title in titles}
    assert set(anchors) <= headings, f"README.md links to anchors {set(anchors) - headings} it has no heading for"


def test_the_flag_reference_names_every_flag_of_every_command() -> None:
    reference = reference_hook().reference_markdown()
    commands = every_command(build_parser())
    assert len(commands) > 10  # rnn-tui, train, generate, sweep, lab and its views, lessons, serve, shapes
    for name, parser in commands.items():
        assert f"`{name}`" in reference, f"the flag reference has no section for {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in reference, f"the flag reference misses {name} {option}"
    for declared in SETTINGS:  # each setting's row, with its form label
        assert re.search(rf"^\| `{declared.option}[ `].*`{re.escape(declared.label)}`", reference, re.M), declared.name


def test_the_flag_reference_page_is_generated_not_typed() -> None:
    hook = reference_hook()
    page = (ROOT / "docs" / hook.PAGE).read_text(encoding="utf-8")
    assert hook.MARKER in page
    typed = [declared.option for declared in SETTINGS if f"`{declared.option}" in page]
    assert not typed, f"docs/{hook.PAGE} types {typed} by hand: the hook generates them"
