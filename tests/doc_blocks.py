"""The documentation's code blocks, by page and section, for the tests that run them as they are
written. A page is a path from the repository root (``docs/tuning.md``, ``README.md``)."""
import os
import re
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A fenced block: its indent (a block may sit in a list item), language and body.
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
#: What marks a block the tests do not run, with the reason, on the line right before it.
NOT_RUN = re.compile(r"<!-- not run by the tests: (.+?) -->")


def read_page(page: str) -> str:
    with open(os.path.join(ROOT, page), encoding="utf-8") as fh:
        return fh.read()


def page_section(page: str, title: str) -> str:
    """The text of the page's ``## title`` section, up to the next ``## `` heading."""
    text = read_page(page)
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def _dedent(indent: str, body: str) -> str:
    return "\n".join(line[len(indent):] for line in body.splitlines())


def code_blocks(page: str, title: str, language: str) -> list[str]:
    """The ``language`` code blocks of the page's ``## title`` section, dedented."""
    return [_dedent(indent, body) for indent, lang, body in _FENCE.findall(page_section(page, title))
            if lang == language]


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: the ``## `` section it sits in, its language, its index among
    that section's blocks of the language, its text, and the reason it is not run (or None)."""
    page: str
    section: str
    language: str
    index: int
    text: str
    not_run: str | None


def page_blocks(page: str) -> list[Block]:
    """Every fenced block of the page, in order (the part before the first ``## `` is the
    section ``""``)."""
    text, blocks, seen = read_page(page), [], {}
    for match in _FENCE.finditer(text):
        indent, language, body = match.groups()
        heading = [h for h in re.findall(r"^## (.+)$", text[:match.start()], re.M)]
        section = heading[-1] if heading else ""
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        index = seen[(section, language)] = seen.get((section, language), -1) + 1
        blocks.append(Block(page, section, language, index, _dedent(indent, body),
                            reason.group(1) if reason else None))
    return blocks
