"""Every relative link of the documentation resolves: the file it names exists, and its `#anchor` is a
heading of that file, slugged as GitHub slugs it. Links to the web (http, https, mailto) are not followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / name for name in ("README.md", "SECURITY.md", "RELIABILITY.md", "BENCHMARKS.md")] + sorted(
    (ROOT / "docs").glob("*.md")
)
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.*?)\s*#*\s*$")
WEB = ("http://", "https://", "mailto:")


def _prose(path: Path) -> Iterator[str]:
    """The file's lines outside fenced code blocks."""
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text, lowercased, without punctuation but hyphens, and with
    hyphens for spaces (a link's text and a code span's content count as text)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a file's headings: a repeated heading's gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose(path):
        heading = HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading["text"])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[str, str]]:
    """Each link of a file, as (text, target), but those inside code."""
    for line in _prose(path):
        for link in LINK.finditer(CODE_SPAN.sub("", line)):
            yield link["text"], link["target"]


def broken(path: Path) -> Iterator[str]:
    for text, target in links(path):
        if target.startswith(WEB):
            continue
        where, _, anchor = target.partition("#")
        linked = (path.parent / where).resolve() if where else path
        link = f"{path.relative_to(ROOT)}: [{text}]({target})"
        if not linked.exists():
            yield f"{link}: no file {where}"
        elif anchor and anchor not in anchors(linked):
            yield f"{link}: no heading of {where or path.name} has #{anchor}"


def test_github_slugs() -> None:
    assert slug("HTTP API") == "http-api"
    assert slug("Fairness and limits") == "fairness-and-limits"
    assert slug('jwt with PyJWT and your JWKS (`pip install "pyjwt[crypto]"`)') == (
        "jwt-with-pyjwt-and-your-jwks-pip-install-pyjwtcrypto"
    )
    assert slug("`make test`: what it needs") == "make-test-what-it-needs"


def test_every_relative_link_resolves() -> None:
    assert DOCS[4:], "no docs/*.md found"
    problems = [problem for path in DOCS for problem in broken(path)]
    assert problems == [], "links that lead nowhere:\n" + "\n".join(problems)


def test_the_readme_links_every_doc() -> None:
    readme = ROOT / "README.md"
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(readme)}
    missing = [str(doc.relative_to(ROOT)) for doc in DOCS[4:] if doc not in linked]
    assert missing == [], f"docs the README's map does not link: {', '.join(missing)}"
