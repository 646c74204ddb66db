"""mypy (strict) on the typing fixtures in ``tests/typing``: what users write type-checks,
and each misuse is reported, with the expected error code, on exactly its line.

A fixture line ending ``# E: <code>`` (several codes: ``# E: arg-type, call-arg``) must get
those mypy errors; every other line none.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "typing"
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")
MARK = re.compile(r"#\s*E:\s*(?P<codes>[a-z-]+(?:\s*,\s*[a-z-]+)*)\s*$")


def _mypy(path: Path) -> tuple[set[tuple[int, str]], str]:
    """The (line, code) of every error mypy --strict reports in ``path``, and its output."""
    out, err, _ = api.run(["--strict", "--no-error-summary", "--show-error-codes", str(path)])
    errors = set()
    for line in out.splitlines():
        match = ERROR.match(line)
        if match:
            assert Path(match["path"]).resolve() == path, line  # errors only in the fixture
            errors.add((int(match["line"]), match["code"]))
    return errors, out + err


def _marked(path: Path) -> set[tuple[int, str]]:
    expected = set()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = MARK.search(text)
        if match:
            expected |= {(number, code.strip()) for code in match["codes"].split(",")}
    return expected


@pytest.mark.parametrize("name", ["typed_start_ok.py", "typed_start_bad.py"])
def test_mypy_reports_exactly_the_marked_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the project's mypy settings (plugins, python_version)
    path = FIXTURES / name
    expected = _marked(path)
    assert name.endswith("_ok.py") or expected, f"{name} marks no line that must fail"
    errors, output = _mypy(path)
    assert errors == expected, output
