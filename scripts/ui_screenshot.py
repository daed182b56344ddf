"""Check the MLflow UI of a store in a headless browser and save screenshots.

Builds a store with one finished search and a merge (``--real``: the demo's
real ADD2x2:top search on local Ray; default: a fake, tiny one), starts the
MLflow UI on 127.0.0.1 for it (``library_store.api.serve_ui``), loads the
experiment page, the search's run page and the winning restart's child run in
headless Chromium, checks the rendered DOM for the run, the metric
``val_acc/restart_<k>``, the winner's child run with its ``val_acc`` and the
artifact ``program.txt``, and saves PNGs. Installs Debian's ``chromium`` if it is missing.

Usage:
    .venv/bin/python scripts/ui_screenshot.py [--out docs] [--store-dir DIR] [--real]

Prints a JSON report; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TASK = "ADD2x2-ui-demo"
SOURCE = "x = Input(3)\np = Param(3)\ny = Output(3)\nif p == 0:\n    y.set_to(x)\nelse:\n    y.set_to(p)\n"
# Keep the browser from reaching out (there is no network here; users' machines have one).
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars", "--window-size=1500,1100"]


def chromium() -> str:
    """Path of a chromium binary, installing Debian's package if none is there."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return shutil.which("chromium")


def fake_store(folder: str):
    """An sqlite store with one finished 12-restart search of TASK and its merge."""
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    store = MlflowStore(f"sqlite:///{folder}/mlflow.db")
    rng = np.random.default_rng(0)
    net = {"signature": "net_0(img[784]) -> 10", "state": {"w0": rng.standard_normal((4, 3)).astype(np.float32)}}
    program = {"source": SOURCE, "filename": "tiny.py", "hypers": {}, "params": {"p": 0},
               "networks": {"net_0": net}, "meta": {}}
    sid = store.start_search(TASK, {"restarts": 12, "steps": 500, "lr": 0.1, "policy": {"window": 5}})
    records = []
    for k in range(12):
        jump = 200 + 20 * k if k in (3, 8) else None
        acc = [0.1 + 0.05 * rng.random() + (0.85 if jump and 10 * i >= jump else 0.0) for i in range(50)]
        records.append({"index": k, "seed": 100 + k, "status": "converged" if jump else "stopped",
                        "reason": "jump" if jump else "budget", "jump_step": jump, "steps": 490,
                        "trajectory": [[10 * i, min(a, 1.0)] for i, a in enumerate(acc)],
                        "program": program if jump else None, "program_val_acc": 0.99 if jump else None,
                        "error": None, "wall_s": 3.0, "actor": f"actor-{k % 2}"})
    store.log_restarts(sid, records[:6])
    store.log_restarts(sid, records[6:])
    store.end_search(sid, {"converged": 2, "stopped": 10, "wall_s": 36.0}, records[3])
    store.merge(TASK, program, lambda task, library: 0.99, search_id=sid, seed=103)
    run_id, _ = store._run(sid)
    return store, store._experiment(TASK), run_id


def real_store(folder: str):
    """The demo's real search (ADD2x2:top on local Ray) and merge, in an sqlite store in ``folder``."""
    import io

    from ntpt_dist.experiments.pipeline import demo
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    store = MlflowStore(f"sqlite:///{folder}/mlflow.db")
    report = demo(store.uri, out=io.StringIO())
    run_id, _ = store._run(report.result.search_id)
    restart = report.result.winner["index"]
    return store, store._experiment(report.task), run_id, report.task, restart


def browse(browser: str, url: str, png: str) -> str:
    """Screenshot ``url`` into ``png`` and return its rendered DOM."""
    budget = "--virtual-time-budget=25000"  # lets the single-page app fetch and render before the snapshot
    subprocess.run([browser, *QUIET, budget, f"--screenshot={png}", url], check=True, capture_output=True, timeout=180)
    done = subprocess.run([browser, *QUIET, budget, "--dump-dom", url], check=True, capture_output=True, text=True,
                          timeout=180)
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for the PNGs")
    parser.add_argument("--store-dir", default=None, help="where to build the store (default: a temporary folder)")
    parser.add_argument("--real", action="store_true", help="run the demo's real search instead of a fake one")
    args = parser.parse_args()
    from ntpt_dist.library_store.api import serve_ui
    from ntpt_dist.library_store.naming import program_model

    browser = chromium()
    folder = args.store_dir or tempfile.mkdtemp(prefix="ntpt-ui-")
    if args.real:
        store, experiment_id, run_id, task, restart = real_store(folder)
        listing = "MOVE_EAST"  # the ADD2x2 program's listing in program.txt
    else:
        store, experiment_id, run_id = fake_store(folder)
        task, restart, listing = TASK, 3, "Param(3)"
    proc, url = serve_ui(store)
    os.makedirs(args.out, exist_ok=True)
    report: dict = {"url": url, "store": store.uri, "checks": {}, "screenshots": []}
    try:
        run_page = f"{url}/#/experiments/{experiment_id}/runs/{run_id}"
        winner = store.client.search_runs(
            [experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`ntpt.winner` = 'true'")
        winner_page = f"{url}/#/experiments/{experiment_id}/runs/{winner[0].info.run_id}" if winner else run_page
        pages = {
            "experiment": (f"{url}/#/experiments/{experiment_id}/runs", ["search-", task]),
            "run": (run_page, [f"val_acc/restart_{restart}", "ntpt.search_id", program_model(task)]),
            "restart": (winner_page, [f"restart-{restart} (winner)", "val_acc", "ntpt.winner"]),
            "artifacts": (f"{run_page}/artifacts/program.txt", ["program.txt", "trajectories.png", listing]),
            "trajectories": (f"{run_page}/artifacts/trajectories.png", ["trajectories.png"]),
        }
        for page, (address, wanted) in pages.items():
            png = os.path.join(args.out, f"store-ui-{page}.png")
            dom = browse(browser, address, png)
            report["screenshots"].append(png)
            report["checks"][page] = {text: text in dom for text in wanted}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok = all(all(c.values()) for c in report["checks"].values())
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
