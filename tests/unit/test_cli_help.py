"""The client and local commands' --help names each setting's environment variable and default
(tests/unit/test_settings.py checks the services')."""

from __future__ import annotations

import argparse
import os

import pytest
from coffee_orders_devtools.processes import RunningCommand

_UNWRAPPED = {**os.environ, "COLUMNS": "1000"}  # argparse wraps help at the terminal's width

COMMANDS = [
    ("order",),
    ("get",),
    ("watch",),
    ("status",),
    ("health",),
    ("dev",),
    ("kafka", "up"),
    ("kafka", "down"),
    ("kafka", "status"),
]


def _subparser(*path: str) -> argparse.ArgumentParser:
    from coffee_orders_cli.commands import build_parser

    parser = build_parser()
    for name in path:
        (choices,) = [
            action.choices
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        ]
        parser = choices[name]
    return parser


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_that_sets_something_says_its_default(path: tuple[str, ...]) -> None:
    missing = [
        action.option_strings[0]
        for action in _subparser(*path)._actions
        if action.option_strings
        and not isinstance(action, argparse._HelpAction | argparse._StoreTrueAction)
        and not action.required
        and "default" not in (action.help or "")
    ]
    assert not missing, f"coffee-orders {' '.join(path)}: no default in the help of {missing}"


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (("order",), ["COFFEE_PRODUCER_TARGET", "COFFEE_TLS_CA", "COFFEE_TLS_CLIENT_CERT"]),
        (("get",), ["COFFEE_PRODUCER_TARGET", "COFFEE_TLS_CA", "COFFEE_TLS_CLIENT_CERT"]),
        (("watch",), ["COFFEE_PRODUCER_TARGET", "COFFEE_TLS_CA", "COFFEE_TLS_CLIENT_KEY"]),
        (("status",), ["COFFEE_CONSUMER_TARGET", "COFFEE_TLS_CA", "COFFEE_TLS_CLIENT_KEY"]),
        (("health",), ["COFFEE_PRODUCER_TARGET", "COFFEE_TLS_CA"]),
        (("dev",), ["COFFEE_KAFKA_PORT"]),
        (("kafka", "up"), ["COFFEE_KAFKA_PORT", "KAFKA_TOPIC"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_help_names_every_environment_variable_the_command_reads(
    path: tuple[str, ...], names: list[str]
) -> None:
    shown = RunningCommand.run_cli(*path, "--help", env=_UNWRAPPED)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for name in names:
        line = next((line for line in lines if name in line), "")
        assert "default" in line, f"coffee-orders {' '.join(path)} --help: {name}\n{shown.stdout}"
