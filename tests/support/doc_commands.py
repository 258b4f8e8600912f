"""The shell commands of README.md and docs/*.md, read as
tests/integration/test_docs_commands.py runs them.

The convention (docs/development-guide.md, "Commands in the docs"):

- A fenced block marked ``sh`` (or ``bash``, ``shell``) holds commands that run as written, one
  per line (a line ending in ``\\`` continues on the next; ``#`` starts a comment).
  ``cd DIR`` and ``export NAME=VALUE`` lines carry over to the following lines of their block.
- A command whose comment says ``until Ctrl-C`` runs until interrupted, as does one ending in
  ``&``: the test starts it, runs the rest of the block, then stops it (SIGINT, or SIGTERM for
  ``&``) and requires that it was still running and stopped promptly without a traceback.
- A ``console`` block is a transcript: ``$ `` lines are commands, the lines after one are its
  output, compared after the same substitutions; ``...`` stands for any text (a line of only
  ``...`` for any number of lines).
- ``<!-- docs-test: skip REASON -->`` on the line above a block keeps the test from running it;
  the reason (say what covers it instead) is required and shows in pytest's summary.
- Output, synopses and other text that is not a command go in a block without a language or
  marked ``text``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND_LANGUAGES = {"sh", "bash", "shell", "console"}
SKIP_MARK = re.compile(r"^<!--\s*docs-test:\s*skip\b\s*(?P<reason>.*?)\s*-->$")
_FENCE = re.compile(r"^```\s*(?P<language>[\w-]*)\s*$")
# Programs the README's setup puts in .venv/bin or .tools/bin, never on PATH.
PROJECT_PROGRAMS = {
    "coffee-orders": ".venv/bin/coffee-orders",
    "pytest": ".venv/bin/pytest",
    "python": ".venv/bin/python",
    "python3": ".venv/bin/python",
    "pip": ".venv/bin/pip",
    "ruff": ".venv/bin/ruff",
    "mypy": ".venv/bin/mypy",
    "py-spy": ".venv/bin/py-spy",
    "grpcurl": ".tools/bin/grpcurl",
    "ghz": ".tools/bin/ghz",
    "buf": ".tools/npm/node_modules/.bin/buf",
}


@dataclass(frozen=True)
class Command:
    text: str  # the command as written, continuation lines joined, comment removed
    line: int  # where it starts in the file
    comment: str = ""
    expected_output: tuple[str, ...] | None = None  # console transcripts only

    @property
    def stop_signal(self) -> str | None:
        """ "SIGINT" for an until-Ctrl-C command, "SIGTERM" for one run with ``&``, else None."""
        if "until ctrl-c" in self.comment.lower():
            return "SIGINT"
        return "SIGTERM" if self.text.endswith("&") else None

    @property
    def program(self) -> str:
        """The first word that is not a NAME=value assignment."""
        for word in self.text.split():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
                return word
        return ""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    skip_reason: str | None
    commands: tuple[Command, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    """README.md first, then docs/*.md by name: the order the test runs their blocks in."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): ``#`` that starts a word outside quotes starts a comment."""
    quote = ""
    word_start = True
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quote != "'":
            index, word_start = index + 2, False  # an escaped character
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and word_start:
            return line[:index].rstrip(), line[index + 1 :].strip()
        word_start = not quote and char.isspace()
        index += 1
    return line.rstrip(), ""


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join lines ending in a backslash with the next one (as the shell does)."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1].rstrip())
            continue
        pending = None
        joined.append((number, text))
    if pending is not None:
        joined.append(pending)
    return joined


def _shell_commands(lines: list[tuple[int, str]]) -> list[Command]:
    commands = []
    for number, text in _logical_lines(lines):
        command, comment = split_comment(text.strip())
        if command:
            commands.append(Command(command, number, comment))
    return commands


def _console_commands(lines: list[tuple[int, str]]) -> list[Command]:
    """``$ command`` lines with the output lines after each."""
    found: list[tuple[int, list[tuple[int, str]], list[str]]] = []
    for number, text in lines:
        if text.startswith("$ "):
            found.append((number, [(number, text[2:])], []))
        elif found and found[-1][1][-1][1].rstrip().endswith("\\") and not found[-1][2]:
            found[-1][1].append((number, text))
        elif found:
            found[-1][2].append(text)
    commands = []
    for _, command_lines, output in found:
        ((number, text),) = _logical_lines(command_lines)
        command, comment = split_comment(text.strip())
        commands.append(Command(command, number, comment, tuple(output)))
    return commands


def blocks(path: Path) -> list[Block]:
    """Every command block of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        language = fence.group("language")
        if language in COMMAND_LANGUAGES:
            body = [(number + 1, lines[number]) for number in range(index + 1, end)]
            mark = SKIP_MARK.match(lines[index - 1].strip()) if index else None
            parse = _console_commands if language == "console" else _shell_commands
            found.append(
                Block(
                    path,
                    index + 1,
                    language,
                    mark.group("reason") if mark else None,
                    tuple(parse(body)),
                )
            )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def output_matches(expected: tuple[str, ...], actual: str) -> bool:
    """``actual`` fits the transcript: exact lines, ``...`` for any text or (alone) any lines."""
    pattern = ""
    for line in _trimmed(list(expected)):
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += re.escape(line).replace(re.escape("..."), r"[^\n]*") + r"\n"
    text = "".join(f"{line}\n" for line in _trimmed(actual.splitlines()))
    return re.fullmatch(pattern, text) is not None


def _trimmed(lines: list[str]) -> list[str]:
    stripped = [line.rstrip() for line in lines]
    while stripped and not stripped[-1]:
        stripped.pop()
    return stripped
