"""Implementations of the ``ntpt-dist`` subcommands (argument parsing is in cli.py).

A model file and a paper task run the same pipeline (``ntpt_dist.pipeline``);
a paper task name reaches ``ntpt_dist.experiments`` only through
``ntpt_dist.paper_tasks`` (and ``lifelong`` and ``generalisation``, the experiments themselves).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from argparse import Namespace

from ntpt_dist.interpreter.errors import NtptError


def _print(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def _open_store(uri):
    from ntpt_dist.library_store.api import LibraryStore

    return LibraryStore(uri)


def _open_existing_store(uri):
    """Open a store a read-only command reads: one that does not exist is an error, never created."""
    from ntpt_dist.library_store.api import LibraryStore

    return LibraryStore(uri, create=False)


def _is_model_file(target: str) -> bool:
    return target.endswith(".py") or os.path.isfile(target)


def _model_file_task(args: Namespace):
    """The Task of ``MODEL.py --data DATA``, or None for a paper task (whose arguments are checked here)."""
    from ntpt_dist import paper_tasks
    from ntpt_dist.pipeline import model_file_task

    target = args.target
    if _is_model_file(target):
        paper_tasks.check_paper_only(target, **{"--data-dir": args.data_dir, "--train-size": args.train_size})
        if not args.data:
            raise NtptError(f"{args.command} {target} needs its data; fix: pass --data DATA.json (TerpreT's data "
                            "format) or DATA.npz")
        return model_file_task(target, args.data, args.hypers, args.hypers_name, args.task)
    if not paper_tasks.is_paper_task(target):
        raise NtptError(f"{target!r} is neither a model file nor one of the paper's tasks (ADD2x2:<pos>, "
                        "APPLY2x2:<pos>, MATH, SIGN, MAZE); fix: pass MODEL.py --data DATA, or a task name")
    for option, value in (("--data", args.data), ("--hypers", args.hypers), ("--hypers-name", args.hypers_name)):
        if value is not None:
            raise NtptError(f"{option} is for a model file, but {target!r} is a paper task that makes its own "
                            "data; fix: drop it (--train-size and --data-dir set a paper task's data)")
    return None


def _paper_task(args: Namespace, library, sizes: dict):
    """The Task of a paper task name (its model depends on ``library``: ADD2x2 starts with net_0 only)."""
    from ntpt_dist import paper_tasks

    if args.train_size is not None:
        sizes = {**sizes, "train": args.train_size}
    task = paper_tasks.paper_task(args.target, library, seed=args.seed, sizes=sizes, data_dir=args.data_dir)
    if args.task:
        task.name = args.task
    return task


def cmd_train(args: Namespace) -> int:
    from ntpt_dist import paper_tasks
    from ntpt_dist.interpreter.train_config import config_with
    from ntpt_dist.pipeline import train_task

    overrides = {k: v for k, v in {"lr": args.lr, "batch_size": args.batch_size}.items() if v is not None}
    overrides.update(args.option)
    config_with(**overrides)  # a misspelt option fails before any data is read
    user_task = _model_file_task(args)  # bad model, data or arguments fail before the library is read
    library = _open_existing_store(args.library).load_library() if args.library else None
    task = user_task or _paper_task(args, library, paper_tasks.TRAIN_SIZES)
    report = train_task(task, restarts=args.restarts, steps=args.steps, seed=args.seed, library=library,
                        device=args.device, options=overrides)
    _print(report.text())
    return 0


def cmd_search(args: Namespace) -> int:
    from ntpt_dist import paper_tasks
    from ntpt_dist.interpreter.train_config import config_with
    from ntpt_dist.pipeline import search_and_merge

    config_with(**dict(args.option))
    if args.backend == "local" and (args.address or args.gpus_per_actor):
        raise NtptError("--address and --gpus-per-actor are for Ray workers, but --backend local trains in this "
                        "process; fix: drop them, or use --backend ray")
    if args.address:  # before the data is read: a dead cluster is known in seconds
        from ntpt_dist.search.ray_backend import check_reachable

        check_reachable(args.address)
    user_task = _model_file_task(args)  # bad model, data or arguments fail before the store is opened
    store = _open_store(args.store)
    library = store.load_library() or None
    task = user_task or _paper_task(args, library, paper_tasks.SEARCH_SIZES)
    report = search_and_merge(
        task, store, restarts=args.restarts, steps=args.steps, seed=args.seed, library=library,
        address=args.address, actors=args.actors, restarts_per_actor=args.restarts_per_actor,
        gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor, backend=args.backend,
        search_id=args.search_id, first_k=args.first_k, device=args.device, options=dict(args.option),
    )
    _print(report.text())
    return 0


def cmd_show(args: Namespace) -> int:
    from ntpt_dist.library_store.api import best_program

    store = _open_existing_store(args.store)
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
    store = _open_existing_store(args.store)
    champions = store.champion_versions()
    tasks = store.tasks()
    if not champions and not tasks:
        _print(f"the store {store.uri} holds no task yet: run `ntpt-dist search MODEL.py --data DATA` "
               "(or a paper task) first")
        return 0
    _print(f"library in {store.uri}:" if champions else f"no networks in the library in {store.uri}")
    for name in sorted(champions):
        for version in store.net_versions(name):
            v = store.get_net_version(name, version)
            mark = "*" if version == champions[name] else " "
            _print(
                f" {mark} {name} v{version}  task={v.task}  search={v.search_id}  parent={v.parent}  "
                + " ".join(f"{k}={val}" for k, val in sorted(v.tags.items()))
            )
    if tasks:
        _print("", "tasks (champion program):")
        for task in tasks:
            version = store.program_champion(task)
            if version is None:
                _print(f"  {task}: no program yet")
                continue
            record = store.get_program(task, version)
            test = "" if record.test_acc is None else f"  test {record.test_acc:.4f}"
            _print(f"  {task} v{version}: validation {record.val_acc:.4f}{test}  library {record.library_version}")
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

    store = _open_existing_store(args.store)
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
    from ntpt_dist.paper_tasks import lifelong

    return lifelong(args.args)


def cmd_generalisation(args: Namespace) -> int:
    from ntpt_dist.paper_tasks import generalisation

    return generalisation(args.args)


def cmd_demo(args: Namespace) -> int:
    from ntpt_dist.paper_tasks import demo

    demo(store_uri=args.store, data_dir=args.data_dir, seed=args.seed, device=args.device, out=sys.stdout)
    return 0
