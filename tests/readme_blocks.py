"""The README's code blocks, by section, for the tests that run them as they are written."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_section(title: str) -> str:
    """The text of README.md's ``## title`` section, up to the next ``## `` heading."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def code_blocks(title: str, language: str) -> list[str]:
    """The ``language`` code blocks of a section, dedented (a block may sit in a list item)."""
    blocks = []
    for indent, body in re.findall(rf"^( *)```{language}\n(.*?)^\1```", readme_section(title), re.S | re.M):
        blocks.append("\n".join(line[len(indent):] for line in body.splitlines()))
    return blocks
