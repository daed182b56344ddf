"""argparse pieces every ``ntpt-dist`` command and the experiment runners share.

Usage errors are one ``error:`` line with exit status 2, and every option's help
ends with its default. A module of its own, so that a runner under
``experiments/`` can parse its options as the command line does without
importing the command line (which imports the runners).
"""

from __future__ import annotations

import argparse

__all__ = ["DefaultsFormatter", "OneLineParser", "at_least", "subcommand_parser"]


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``error: ...``, with exit status 2 (as every other error)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def at_least(low: float, kind: type = int):
    """argparse type: a ``kind`` (int or float) >= ``low``, else a usage error that says so."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_kind_name(kind)} >= {low}, but got {text!r}") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be >= {low}, but got {text}")
        return value

    parse.__name__ = f"{_kind_name(kind)} >= {low}"
    return parse


def _kind_name(kind: type) -> str:
    return "an integer" if kind is int else "a number"


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default; an option without one says what happens instead."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            return text
        if action.default == [] or isinstance(action.default, bool):
            return text
        return super()._get_help_string(action)


def subcommand_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser for a subcommand that parses its own options (``lifelong``, ``generalisation``), as these do.

    Usage errors are one ``error:`` line with exit status 2; every option's help ends with its default.

    Example:
        >>> p = subcommand_parser("ntpt-dist generalisation", "Fig. 8")
        >>> p.add_argument("--seed", type=int, default=0, help="seed").default
        0
    """
    return OneLineParser(prog=prog, description=description, formatter_class=DefaultsFormatter)
