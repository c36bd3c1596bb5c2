"""Every relative link, image and notebook path in the README and the notebooks resolves to a file in the repository;
every Colab, Binder and raw-GitHub link of this repository points at a file that exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))  # the course build is a repository tool, not part of the package
from notebooks import load_manifest  # noqa: E402  (tools/notebooks.py)

MANIFEST = load_manifest(REPO)

LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"   # [text](target "title"), ![alt](target)
                  r"|^\s*\[[^\]]+\]:\s*(\S+)"                      # [ref]: target
                  r"|<(?:img|a|source)\s[^>]*?(?:src|href)=[\"']([^\"']+)[\"']", re.MULTILINE)
NOTEBOOK_PATH = re.compile(r"(?<![\w/.:-])((?:\.\./|\./)?(?:[\w.-]+/)*[\w.-]+\.ipynb)\b")
REPO_URL = re.compile(
    rf"https://(?:colab\.research\.google\.com/github/{MANIFEST.repo}/blob/{MANIFEST.branch}/(?P<colab>[^)\s\"'#?]+)"
    rf"|mybinder\.org/v2/gh/{MANIFEST.repo}/{MANIFEST.branch}\?urlpath=lab/tree/(?P<binder>[^)\s\"'#&]+)"
    rf"|raw\.githubusercontent\.com/{MANIFEST.repo}/{MANIFEST.branch}/(?P<raw>[^)\s\"'#?]+)"
    rf"|github\.com/{MANIFEST.repo}/(?:blob|tree)/{MANIFEST.branch}/(?P<blob>[^)\s\"'#?]+))")


def _documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "notebooks").glob("*.ipynb")),
            *sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))]


def _texts(path: Path) -> list[str]:
    """The markdown of a document: the file itself, or a notebook's markdown cells (and code cells, for URLs)."""
    if path.suffix != ".ipynb":
        return [path.read_text(encoding="utf-8")]
    return ["".join(cell["source"]) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def relative_targets(text: str) -> list[str]:
    """Relative link targets in ``text`` (no scheme, not an in-page anchor).

    >>> relative_targets('[a](x.md) ![b](../i.svg "t") [c](https://e.org) <img src="p.png"> [d](#top)')
    ['x.md', '../i.svg', 'p.png']
    """
    found = [next(g for g in m.groups() if g) for m in LINK.finditer(text)]
    return [t for t in found if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", t, re.IGNORECASE)]


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(document: Path) -> None:
    texts = _texts(document)
    targets = [t for text in texts for t in relative_targets(text)]
    broken = []
    for target in targets:
        path = unquote(urlsplit(target).path)
        if path and not (document.parent / path).resolve().exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(REPO)}: links to missing files {broken}"


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_notebook_paths_resolve(document: Path) -> None:
    """A notebook named in the text (a link, a code span, prose) exists, relative to the document or the repo root
    (a bare file name: in notebooks/)."""
    missing = []
    for text in _texts(document):
        for match in NOTEBOOK_PATH.finditer(re.sub(r"https?://\S+", "", text)):  # URLs: the tests above
            name = match.group(1)
            bare = "/" not in name and (REPO / "notebooks" / name).exists()  # "open 00_setup.ipynb" in prose
            if not ((document.parent / name).exists() or (REPO / name).exists() or bare):
                missing.append(name)
    assert not missing, f"{document.relative_to(REPO)} names notebooks that do not exist: {missing}"


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_links_to_this_repository_point_at_existing_files(document: Path) -> None:
    missing = []
    for text in _texts(document):
        for match in REPO_URL.finditer(text):
            rel = next(g for g in match.groups() if g)
            if not (REPO / unquote(rel)).exists():
                missing.append(match.group(0))
    assert not missing, f"{document.relative_to(REPO)}: links to files missing from the repository {missing}"


def test_in_page_anchors_of_the_readme_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", readme, re.MULTILINE)}
    anchors = re.findall(r"\]\(#([^)\s]+)\)", readme)
    assert not [a for a in anchors if a not in headings], f"README anchors without a heading; headings: {headings}"


def test_the_readme_links_every_notebook_and_its_badges() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for entry in MANIFEST.notebooks:
        assert f"]({entry.learner.as_posix()})" in readme and f"]({entry.solution.as_posix()})" in readme
        assert MANIFEST.colab_url(entry.learner) in readme and MANIFEST.binder_url(entry.learner) in readme


def test_the_link_checker_catches_a_broken_link(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("![gone](images/nope.svg) [ok](doc.md)")
    targets = relative_targets(doc.read_text())
    assert [t for t in targets if not (tmp_path / t).exists()] == ["images/nope.svg"]
