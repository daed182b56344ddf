"""Implementations of the ``ntpt-dist`` subcommands (argument parsing is in cli.py)."""

from __future__ import annotations

import signal
import sys
import time
from argparse import Namespace


def _print(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def _open_store(uri):
    from ntpt_dist.library_store.api import LibraryStore

    return LibraryStore(uri)


def cmd_train(args: Namespace) -> int:
    from ntpt_dist.experiments.runner import train_task
    from ntpt_dist.interpreter.engine import config_with

    library = _open_store(args.library).load_library() if args.library else None
    overrides = {k: v for k, v in {"lr": args.lr, "batch_size": args.batch_size}.items() if v is not None}
    overrides.update(args.option)
    config_with(**overrides)  # a misspelt option fails before any data is read
    outcome = train_task(
        args.task, restarts=args.restarts, steps=args.steps, seed=args.seed, library=library,
        data_dir=args.data_dir, device=args.device, sizes={"train": args.train_size}, **overrides,
    )
    _print(
        f"best program for {args.task} ({args.restarts} restarts x {args.steps} steps, {outcome.wall_s:.0f} s):",
        "",
        outcome.program.listing(),
        "",
        f"validation accuracy {outcome.validation_accuracy:.4f}   test accuracy {outcome.test_accuracy:.4f}",
    )
    for digits, acc in outcome.extra.get("accuracy_by_digits", {}).items():
        _print(f"  MATH with {digits:2d} digits: {acc:.4f}")
    return 0


def cmd_search(args: Namespace) -> int:
    from ntpt_dist.experiments.pipeline import search_and_merge

    if args.address:  # before the data is read: a dead cluster is known in seconds
        from ntpt_dist.search.ray_backend import check_reachable

        check_reachable(args.address)
    store = _open_store(args.store)
    report = search_and_merge(
        args.task, store=store, restarts=args.restarts, steps=args.steps, seed=args.seed,
        address=args.address, actors=args.actors, restarts_per_actor=args.restarts_per_actor,
        gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor,
        search_id=args.search_id, first_k=args.first_k, data_dir=args.data_dir, device=args.device,
        sizes={"train": args.train_size}, config=dict(args.option),
    )
    _print(report.text())
    return 0


def cmd_show(args: Namespace) -> int:
    from ntpt_dist.library_store.api import best_program

    store = _open_store(args.store)
    program = best_program(args.task, store=store)
    _print(
        f"{args.task}: champion program (library {program.library_version})",
        "",
        program.listing(),
        "",
        f"accuracy: {program.accuracy}",
    )
    return 0


def cmd_library(args: Namespace) -> int:
    store = _open_store(args.store)
    champions = store.champion_versions()
    if not champions:
        _print(f"the library in {store.uri} is empty: run `ntpt-dist search TASK` first")
        return 0
    _print(f"library in {store.uri}:")
    for name in sorted(champions):
        for version in store.net_versions(name):
            v = store.get_net_version(name, version)
            mark = "*" if version == champions[name] else " "
            _print(
                f" {mark} {name} v{version}  task={v.task}  search={v.search_id}  parent={v.parent}  "
                + " ".join(f"{k}={val}" for k, val in sorted(v.tags.items()))
            )
    merges = store.merges()
    if merges:
        _print("", "merge decisions:")
        for m in merges:
            _print(f"  {m.get('task')}: {m.get('reason')}")
    return 0


class _Terminated(Exception):
    """SIGTERM arrived (``kill``, a service manager, a container stopping)."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def cmd_ui(args: Namespace) -> int:
    from ntpt_dist.library_store.api import serve_ui

    store = _open_store(args.store)
    proc, url = serve_ui(store, port=args.port)
    _print(f"MLflow UI for {store.uri} at {url}  (Ctrl-C stops it)")
    # Without a handler SIGTERM ends this process at once, and the server, in a session of its
    # own, would outlive it: stop it as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    stopped = False
    try:
        while proc.poll() is None:
            time.sleep(0.5)
    except (KeyboardInterrupt, _Terminated):
        stopped = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        proc.stop()
    return 0 if stopped else (proc.returncode or 0)


def cmd_lifelong(args: Namespace) -> int:
    from ntpt_dist.experiments.lifelong import main

    return main(args.args)


def cmd_demo(args: Namespace) -> int:
    from ntpt_dist.experiments.pipeline import demo

    demo(store_uri=args.store, data_dir=args.data_dir, seed=args.seed, device=args.device, out=sys.stdout)
    return 0
