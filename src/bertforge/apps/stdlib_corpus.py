"""The demo's corpus: the English prose of the standard library's docstrings and ``pydoc_data``'s topics.

Every Python installation carries it, so the demo runs offline. Each docstring
belongs to the training or the held-out side by a stable hash of its name.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import pkgutil
import re
import sys
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

# Modules whose import does something (opens a browser, prints, starts a GUI, changes
# the terminal) or that are only tests, scripts or Windows-only.
SKIPPED_MODULES = frozenset({
    "this", "antigravity", "idlelib", "tkinter", "turtle", "turtledemo", "test", "lib2to3", "readline",
    "rlcompleter", "ensurepip", "pydoc_data", "__hello__", "__phello__", "encodings",
})
_SKIPPED_PARTS = frozenset({"test", "tests", "idle_test", "__main__"})

TEST_FRACTION = 0.15  # of the docstrings, held out for testing

# A word of plain prose: letters, an optional apostrophe suffix, then at most one mark.
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*(?:'[a-z]+)?[,.;:!?]?")
_UNDERLINE = re.compile(r"([*=~^-])\1+")
# A sentence ends at . ! or ? after a letter, digit or closer, before a capital.
_SENTENCE_END = re.compile(r"(?<=[A-Za-z0-9)\"'][.!?])\s+(?=[A-Z\"(])")


@dataclass(frozen=True)
class Docstring:
    """One documented object: where it comes from and its prose paragraphs.

    >>> Docstring("json", ("JSON encoder and decoder.",)).held_out, Docstring("tempfile", ()).held_out
    (False, True)
    """

    source: str  # "collections.OrderedDict.popitem", "pydoc topic: if"
    paragraphs: tuple[str, ...]

    @property
    def held_out(self) -> bool:
        """Whether this docstring belongs to the test split (a stable hash of its source)."""
        return zlib.crc32(self.source.encode()) % 1000 < TEST_FRACTION * 1000


def _import_quietly(name: str):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return importlib.import_module(name)


def stdlib_modules() -> dict[str, Any]:
    """The importable public modules of the standard library, submodules included, by name.

    >>> modules = stdlib_modules()
    >>> "collections" in modules and "email.mime.text" in modules and "antigravity" not in modules
    True
    """
    modules: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules say so on import
        for name in sorted(sys.stdlib_module_names):
            if name.startswith("_") or name in SKIPPED_MODULES:
                continue
            try:
                module = _import_quietly(name)
            except BaseException:  # absent on this platform, or refuses to import: not our corpus
                continue
            modules[name] = module
            for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}.", onerror=lambda _: None):
                parts = info.name.split(".")[1:]
                if any(part.startswith("_") or part in _SKIPPED_PARTS for part in parts):
                    continue
                try:
                    modules[info.name] = _import_quietly(info.name)
                except BaseException:
                    continue
    return dict(sorted(modules.items()))


def _documented_objects(name: str, module) -> Iterator[tuple[str, Any]]:
    """The module, then its own public classes (with their methods) and functions."""
    yield name, module
    for attribute, value in sorted(vars(module).items()):
        if attribute.startswith("_") or getattr(value, "__module__", None) != name:
            continue
        if inspect.isclass(value):
            yield f"{name}.{attribute}", value
            for member, item in sorted(vars(value).items()):
                if member.startswith("_"):
                    continue
                if isinstance(item, (classmethod, staticmethod)):
                    item = item.__func__
                if inspect.isroutine(item) or isinstance(item, property):
                    yield f"{name}.{attribute}.{member}", item
        elif inspect.isroutine(value):
            yield f"{name}.{attribute}", value


def prose_paragraphs(text: str) -> list[str]:
    """The paragraphs of a docstring that read as English prose, each on one line.

    Indented blocks, doctest lines, headings and paragraphs of mostly non-words
    (signatures, tables, code) are left out.

    >>> prose_paragraphs("Return the sum.\\n\\n    >>> add(1, 2)\\n    3\\n\\nBoth numbers must be\\nintegers or floats.")
    ['Both numbers must be integers or floats.']
    >>> prose_paragraphs("f(x) -> y\\n\\nx must be positive, and y is its square root here.")
    ['x must be positive, and y is its square root here.']
    """
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.split("\n") if line.strip()]
        if len(lines) > 1 and _UNDERLINE.fullmatch(lines[1].strip()):
            lines = lines[2:]  # a heading and its underline
        if not lines or any(line.startswith((" ", "\t", ">>>", "...")) for line in lines):
            continue
        words = " ".join(line.strip() for line in lines).split()
        if len(words) < 6:
            continue
        plain = sum(1 for word in words if _PLAIN_WORD.fullmatch(word.strip("\"'()`")))
        if plain >= 0.75 * len(words):
            paragraphs.append(" ".join(words))
    return paragraphs


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph at sentence ends (a fast rule, good enough for docstrings).

    Not :func:`bertforge.data.corpus.split_sentences`: pysbd takes ~300x longer, about
    ten seconds of the demo's budget on these 8,000 paragraphs, for no gain on this prose.

    >>> split_sentences("Return the value. It is cached, e.g. by the caller. Done!")
    ['Return the value.', 'It is cached, e.g. by the caller.', 'Done!']
    """
    return _SENTENCE_END.split(paragraph)


def stdlib_docstrings() -> list[Docstring]:
    """The prose of the standard library's docstrings and ``pydoc_data``'s topics, in a fixed order.

    >>> docs = stdlib_docstrings()
    >>> len(docs) > 1000 and any(doc.source == "pydoc topic: if" for doc in docs)
    True
    """
    docs: list[Docstring] = []
    seen: set[str] = set()  # inherited and aliased objects repeat their docstrings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reading some deprecated objects' docstrings warns
        for name, module in stdlib_modules().items():
            for source, value in _documented_objects(name, module):
                text = inspect.getdoc(value)
                if not text or text in seen:
                    continue
                seen.add(text)
                paragraphs = prose_paragraphs(text)
                if paragraphs:
                    docs.append(Docstring(source, tuple(paragraphs)))
    from pydoc_data.topics import topics

    for topic, text in sorted(topics.items()):
        paragraphs = prose_paragraphs(text)
        if paragraphs:
            docs.append(Docstring(f"pydoc topic: {topic}", tuple(paragraphs)))
    return docs


__all__ = ["Docstring", "SKIPPED_MODULES", "TEST_FRACTION", "prose_paragraphs", "split_sentences",
           "stdlib_docstrings", "stdlib_modules"]
