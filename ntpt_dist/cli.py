"""The ``ntpt-dist`` command: train, search, show, library, ui, lifelong, generalisation, demo.

``train`` and ``search`` take a model file with its data (``MODEL.py --data DATA.json``
or ``.npz``, optionally ``--hypers HYPERS.json --hypers-name NAME``) or one of the
paper's task names; ``show``, ``library`` and ``ui`` read any task from the store.

Every command reports bad input as one ``error:`` line (with file:line:col for
model source) and exit status 2, never a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from ntpt_dist.arguments import DefaultsFormatter, OneLineParser, at_least
from ntpt_dist.interpreter.errors import NtptError, SourceError


def _port(text: str) -> int:
    value = at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, but got {text}")
    return value


DATA_HELP = (
    "data file of MODEL.py: TerpreT's JSON data (a list of batches; 'train' required, 'val' and 'test' "
    "optional, other batch names ignored) or an .npz of arrays named <batch>.<variable> (train.x, train.y, "
    "test.x, ...; -1 marks a don't-care output). Without a 'val' batch the last 10%% (at least one) of "
    "'train' after a shuffle with numpy.random.default_rng(0) is the validation data (default: none; "
    "required for a model file)"
)


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="MODEL.py|TASK",
                   help="a model file (with --data), or one of the paper's tasks: ADD2x2:top|left|bottom|right, "
                        "APPLY2x2:top|left|bottom|right, MATH, SIGN, MAZE")
    p.add_argument("--data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--hypers", metavar="HYPERS.json",
                   help="TerpreT hypers file {name: {hyper: value}} for MODEL.py (default: none)")
    p.add_argument("--hypers-name", metavar="NAME",
                   help="the hypers file's entry to compile with (default: its only entry, else the one the "
                        "'train' batch names)")
    p.add_argument("--task", help="the task's name in the store (default: the model file's stem, or TASK)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-size", type=at_least(1),
                   help="paper tasks: distinct training instances (paper: 1k or 4k) (default: 4000)")
    p.add_argument("--data-dir", help="paper tasks: folder with MNIST/, operators/, gtsrb/ "
                                      "(default: $NTPT_DATA_DIR, else download)")
    p.add_argument("--seed", type=int, default=0, help="seed of the restarts (and of a paper task's data)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def option_type(text: str) -> tuple[str, object]:
    """argparse type of ``--option KEY=VALUE`` (see ``interpreter.train_config.parse_option``)."""
    from ntpt_dist.interpreter.train_config import config_with, parse_option

    try:
        key, value = parse_option(text)
        config_with(**{key: value})  # a misspelt name or a value of the wrong type fails here, before any work
    except (ValueError, NtptError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return key, value


def _add_option_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--option", type=option_type, action="append", default=[], metavar="KEY=VALUE",
                   help="training option, repeatable (a TrainConfig field, e.g. init_scale=3.0; eval_every sets "
                        "the steps between validation evaluations); overrides the task's recipe (default: none)")


def _add_store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="store URI or folder (default: $NTPT_STORE_URI, else ./ntpt-store with sqlite)")


def build_parser() -> argparse.ArgumentParser:
    from ntpt_dist import __version__

    parser = OneLineParser(prog="ntpt-dist", description=__doc__.splitlines()[0], formatter_class=DefaultsFormatter)
    parser.add_argument("--version", action="version", version=f"ntpt-dist {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=DefaultsFormatter, **kw)

    p = add("train", help="train a model file or a paper task in one process (vectorised restarts)")
    _add_target_args(p)
    p.add_argument("--restarts", type=at_least(1), default=16, help="random restarts, trained together")
    p.add_argument("--steps", type=at_least(1), default=2000, help="training steps of every restart")
    p.add_argument("--library", help="store URI/folder whose champion networks to start from (default: none)")
    p.add_argument("--lr", type=at_least(0, float), help="learning rate (default: the recipe's, else TrainConfig's)")
    p.add_argument("--batch-size", type=at_least(1),
                   help="instances per step (default: the recipe's, else TrainConfig's)")
    _add_option_arg(p)
    _add_data_args(p)

    p = add("search", help="distributed restart search; the winner is merged into the store")
    _add_target_args(p)
    p.add_argument("--restarts", type=at_least(1), default=100, help="restart budget")
    p.add_argument("--steps", type=at_least(1), default=3000, help="step budget of one restart")
    p.add_argument("--backend", choices=("ray", "local"), default="ray",
                   help="ray: actors on a Ray cluster; local: in this process, no Ray")
    p.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port (default: a local Ray)")
    p.add_argument("--actors", type=at_least(1), help="workers (default: as many as the cluster's CPUs/GPUs allow)")
    p.add_argument("--restarts-per-actor", type=at_least(1), default=8, help="restarts a worker trains at once")
    p.add_argument("--gpus-per-actor", type=at_least(0, float), default=0.0, help="GPUs of each Ray worker")
    p.add_argument("--cpus-per-actor", type=at_least(1), default=1, help="CPUs (torch threads) of each Ray worker")
    p.add_argument("--search-id", help="resume this search: finished restarts are not redone (default: a new one)")
    p.add_argument("--first-k", type=at_least(1), help="stop once this many restarts converged (default: run all)")
    _add_option_arg(p)
    _add_store_arg(p)
    _add_data_args(p)

    p = add("show", help="the champion program of a task and its numbers")
    p.add_argument("task", help="a task name in the store (a model file's stem, or a paper task)")
    _add_store_arg(p)

    p = add("library", help="library versions, lineage and merge decisions")
    _add_store_arg(p)

    p = add("ui", help="start the MLflow UI for the store on 127.0.0.1")
    p.add_argument("--port", type=_port, default=5000, help="port of the UI")
    _add_store_arg(p)

    p = add("lifelong", help="the lifelong-learning experiment of section 6.1 (NTPT and baselines)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the experiment (--help lists them)")

    p = add("generalisation", add_help=False,
            help="Fig. 8 of section 6.2: MATH models trained on short expressions, tested on 1..16 digits; "
                 "--part a (symbolic) or b (handwritten); writes JSON and a figure")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the experiment (--help lists them)")

    p = add("demo", help="the main job end to end on embedded defaults (a few minutes on 2 CPUs)")
    _add_store_arg(p)
    p.add_argument("--data-dir", help="folder with MNIST/ (default: $NTPT_DATA_DIR, else download)")
    p.add_argument("--seed", type=int, default=0, help="seed of the restarts and the data")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["lifelong"], ["generalisation"]):  # their own option parsers take everything after the word
        args = argparse.Namespace(command=argv[0], args=argv[1:])
    else:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # a usage error (its one line is printed) or --help: a status, as below
            return exit_.code if isinstance(exit_.code, int) else 2
    try:
        from . import commands

        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except NtptError as e:
        text = str(e)
        if isinstance(e, SourceError):  # "file:line:col: error: msg" -> "error: file:line:col: msg"
            text = text.replace(f"{e.span}: error: ", f"{e.span}: ", 1)
        print(f"error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
