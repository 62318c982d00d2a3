"""The documentation works: its Python examples run, and its relative links lead somewhere.

Every ```python block of README.md and docs/*.md is executed in a fresh namespace, with the
repository root as the working directory (blocks are meant to be quick). Every relative link
(and image) must point to an existing file, and a ``#fragment`` into a Markdown file must name
one of its headings (GitHub's anchor rules).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _blocks(text: str):
    """(info string, first line number, code) of every fenced block."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i].lstrip())
        if m:
            fence, info, start = m.group(1), lines[i].lstrip()[3:].strip(), i + 1
            j = start
            while j < len(lines) and not lines[j].lstrip().startswith(fence):
                j += 1
            out.append((info, start + 1, "\n".join(lines[start:j])))
            i = j + 1
        else:
            i += 1
    return out


def _outside_fences(text: str, strip_inline_code: bool):
    """The lines of ``text`` with fenced blocks blanked (and inline code removed if asked)."""
    inside, fence = False, ""
    for line in text.splitlines():
        m = FENCE.match(line.lstrip())
        if m and (not inside or line.lstrip().startswith(fence)):
            inside, fence = not inside, m.group(1)
            yield ""
        elif inside:
            yield ""
        else:
            yield INLINE_CODE.sub("", line) if strip_inline_code else line


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set:
    anchors, seen = set(), {}
    for line in _outside_fences(path.read_text(encoding="utf-8"), strip_inline_code=False):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


PYTHON_BLOCKS = [
    pytest.param(page, line, code, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for info, line, code in _blocks(page.read_text(encoding="utf-8"))
    if info.split()[:1] in (["python"], ["py"])
]


def test_the_docs_have_pages_and_examples():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/quickstart.md", "docs/model-of-time.md",
            "docs/design.md"} <= names
    assert PYTHON_BLOCKS


@pytest.mark.parametrize("page, line, code", PYTHON_BLOCKS)
def test_python_blocks_run(page, line, code, monkeypatch):
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__docs__"}
    exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)  # noqa: S102


def _links():
    for page in PAGES:
        prose = "\n".join(_outside_fences(page.read_text(encoding="utf-8"), strip_inline_code=True))
        for m in LINK.finditer(prose):  # link texts may wrap across lines
            target = m.group(1)
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto:, …
                continue
            n = prose.count("\n", 0, m.start(1)) + 1
            yield pytest.param(page, target, id=f"{page.relative_to(ROOT)}:{n}:{target}")


@pytest.mark.parametrize("page, target", list(_links()))
def test_relative_links_point_to_existing_files(page, target):
    path, _, fragment = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: link to {target}: no such file {dest}"
    if fragment and dest.suffix == ".md":
        anchors = _anchors(dest)
        assert fragment in anchors, (f"{page.relative_to(ROOT)}: link to {target}: no heading with "
                                     f"anchor #{fragment} in {dest.name}")


def test_the_timeline_figure_matches_the_hand_computation(monkeypatch):
    """docs/figures/timeline.py checks its events before drawing; run that check (no drawing)."""
    import importlib.util

    monkeypatch.setenv("MPLBACKEND", "Agg")
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("timeline", ROOT / "docs" / "figures" / "timeline.py")
    timeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timeline)
    timeline.check(timeline.record_events())
    assert (ROOT / "docs" / "figures" / "timeline.png").exists()
