"""Every relative link and image in README.md and docs/*.md points at a file that exists.

Markdown links `[text](target)` and images `![alt](target)`, plus `<img src="...">`, outside code blocks and inline
code. Web and mail links (http, https, mailto) and pure anchors (#section) are not checked; a fragment after a
relative path (`docs/runs.md#checkpoints`) is dropped and the path checked.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) or ![alt](target), the target optionally followed by a "title"; <target> allowed
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_IMG_TAG = re.compile(r"<img\s[^>]*src=[\"']([^\"']+)[\"']", re.IGNORECASE)
_EXTERNAL = re.compile(r"^(https?:|mailto:)", re.IGNORECASE)


def link_targets(text: str) -> list[str]:
    """The link and image targets of a Markdown text, outside fenced code blocks and inline code."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", text))
    return _LINK.findall(text) + _IMG_TAG.findall(text)


def broken_links(page: Path) -> list[str]:
    """The relative targets of `page` that name no existing file or folder (resolved from the page's folder)."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    return broken


def test_the_pages_exist_and_link_somewhere():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1
    assert link_targets((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert broken_links(page) == [], f"{page.relative_to(ROOT)} links to missing files"


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("![ok](there.png) [gone](missing.md#part) [web](https://example.org/x) [anchor](#top)\n"
                    "<img src=\"nope.png\">\n"
                    "`[code](not-a-link.md)`\n"
                    "```\n[fenced](not-a-link-either.md)\n```\n", encoding="utf-8")
    assert broken_links(page) == ["missing.md#part", "nope.png"]
