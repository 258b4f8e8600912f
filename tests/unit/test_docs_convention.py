"""The command blocks of the docs follow the convention test_docs_commands.py relies on (no broker).

docs/development-guide.md ("Commands in the docs") describes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_commands import (
    PROJECT_PROGRAMS,
    ROOT,
    Block,
    all_blocks,
    blocks,
    output_matches,
    split_comment,
)
from tests.support.doc_runner import Substitutions


def test_every_command_names_the_path_the_readme_setup_installs_it_at() -> None:
    bare = [
        f"{block.name} line {command.line}: write {PROJECT_PROGRAMS[command.program]}, "
        f"not {command.program} (it is not on PATH after the README's setup)"
        for block in all_blocks()
        for command in block.commands
        if command.program in PROJECT_PROGRAMS
    ]
    assert not bare, "\n".join(bare)


def test_a_skipped_block_says_why() -> None:
    unexplained = [block.name for block in all_blocks() if block.skip_reason == ""]
    assert not unexplained, f"<!-- docs-test: skip REASON --> without a reason: {unexplained}"


def test_the_readme_and_docs_hold_blocks_that_run() -> None:
    runnable = [block for block in all_blocks() if block.skip_reason is None]
    names = " ".join(block.name for block in runnable)
    assert "README.md" in names and "docs/grpcurl.md" in names, names
    assert sum(len(block.commands) for block in runnable) >= 30, names


def _parse(tmp_path: Path, markdown: str) -> list[Block]:
    (tmp_path / "page.md").write_text(markdown)
    found = blocks(tmp_path / "page.md")
    return [Block(ROOT / "page.md", b.line, b.language, b.skip_reason, b.commands) for b in found]


def test_blocks_are_read_as_the_shell_would_read_them(tmp_path: Path) -> None:
    markdown = "\n".join(
        [
            "Some text.",
            "```sh",
            "# a comment line",
            ".venv/bin/coffee-orders order --customer 'A # B' \\",
            "  --coffee Latte   # a comment",
            ".venv/bin/coffee-orders status --watch    # each error, until Ctrl-C",
            "tool --serve &",
            "```",
            "<!-- docs-test: skip covered by tests/test_dev.py -->",
            "```sh",
            "make run",
            "```",
            "```text",
            "not a command",
            "```",
            "```console",
            "$ echo one \\",
            "  two",
            "one two",
            "```",
        ]
    )
    shell, skipped, console = _parse(tmp_path, markdown)
    order, watch, serve = shell.commands
    assert order.text == ".venv/bin/coffee-orders order --customer 'A # B' --coffee Latte"
    assert (order.line, order.comment, order.stop_signal) == (4, "a comment", None)
    assert watch.stop_signal == "SIGINT" and serve.stop_signal == "SIGTERM"
    assert skipped.skip_reason == "covered by tests/test_dev.py" and shell.skip_reason is None
    (echo,) = console.commands
    assert (echo.text, echo.expected_output) == ("echo one two", ("one two",))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("kcat -f '%k %h\\n'   # what Kafka holds", ("kcat -f '%k %h\\n'", "what Kafka holds")),
        ('echo "a # b" # c', ('echo "a # b"', "c")),
        (
            "buf breaking --against '.git#ref=HEAD~1'",
            ("buf breaking --against '.git#ref=HEAD~1'", ""),
        ),
        ("echo a\\ #b", ("echo a\\ #b", "")),
    ],
)
def test_comments_start_outside_quotes_after_a_space(line: str, expected: tuple[str, str]) -> None:
    assert split_comment(line) == expected


def test_transcripts_match_exactly_except_where_they_say_dots() -> None:
    expected = ("{", '  "order_id": "...",', "...", "}")
    assert output_matches(expected, '{\n  "order_id": "abc",\n  "a": 1,\n  "b": 2\n}\n')
    assert output_matches(expected, '{\n  "order_id": "",\n}\n')  # "..." alone: no line too
    assert not output_matches(expected, '{\n  "orderId": "abc"\n}\n')
    assert not output_matches(("ERROR:",), "ERROR:\nmore\n")


def test_substitutions_are_consistent_and_leave_other_text_alone(tmp_path: Path) -> None:
    substitutions = Substitutions({9092: 41000, 50051: 41002, 50052: 41004}, tmp_path, {})
    text = (
        "kcat -b localhost:9092 && grpcurl 127.0.0.1:50051 && curl localhost:9464/x "
        "&& curl localhost:9464/y && kafka up --port 19092 --data-dir /tmp/k3 && cat a/tmp/b"
    )
    ran = substitutions.command(text)
    metrics = substitutions.addresses[9464]
    base = substitutions.broker_bases[19092]
    assert ran == (
        f"kcat -b localhost:41000 && grpcurl 127.0.0.1:41002 && curl localhost:{metrics}/x "
        f"&& curl localhost:{metrics}/y && kafka up --port {base} --data-dir {tmp_path}/k3 "
        "&& cat a/tmp/b"
    )
    assert substitutions.command(".venv/bin/pytest tests/x.py -k y") == (
        ".venv/bin/pytest --collect-only -q tests/x.py -k y"
    )
