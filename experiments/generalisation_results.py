"""Fig. 8's result files after the runs: several runs' JSON joined into one, and the figure in the paper's layout."""

from __future__ import annotations

import json
from pathlib import Path

from ..interpreter.errors import NtptError

__all__ = ["combine", "figure"]

LABELS = {"ntpt": "NTPT / TerpreT", "lstm": "LSTM", "neural_gpu": "Neural GPU",
          "lstm2": "LSTM - 2digit", "lstm5": "LSTM - 5digit", "ntpt2": "NTPT - 2digit"}


def figure(result: dict, path: Path) -> None:
    """Accuracy (%) against digits in the expression, one line per model; solid dots on training lengths.

    One panel per kind of result present: (a) symbolic, (b) perceptual.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("symbolic", "perceptual") if k in result]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        models = result["models"].get(kind, result["models"])
        for name, acc in result[kind].items():
            digits = [int(d) for d in acc]
            values = [100 * a for a in acc.values()]
            trained = set(models.get(name, {}).get("train_digits", result.get("train_digits", [])))
            params = models.get(name, {}).get("parameters")
            label = LABELS.get("ntpt2" if kind == "perceptual" and name == "ntpt" else name, name)
            label += f" ({params:,})" if kind == "symbolic" and params else ""
            (line,) = ax.plot(digits, values, "-", label=label)
            for d, v in zip(digits, values):
                ax.plot(d, v, "o", color=line.get_color(), markerfacecolor=line.get_color() if d in trained else "white")
            ax.annotate(f"{values[-1]:.1f}", (digits[-1], values[-1]), textcoords="offset points", xytext=(4, 0),
                        fontsize=8, va="center")
        ax.set_xlabel("digits in expression")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"({'a' if kind == 'symbolic' else 'b'}) {kind} MATH")
        ax.set_xlim(0, result.get("max_digits", 16) + 2)
        ax.set_ylim(0, 102)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def combine(paths: list) -> dict:
    """One result from several runs' JSON files: their accuracies and models merged, each run's command kept.

    A file named ``FILE:m1,m2`` contributes only the models ``m1``, ``m2`` (e.g. one of
    the two LSTMs of a part b run, the other taken from a run with another setting). A file
    that is itself a combination contributes its runs (e.g. part a's and part b's into one).

    Raises:
        NtptError: no files, a model that two files both contribute, or a named model a file lacks.
    """
    if not paths:
        raise NtptError("--combine needs at least one result JSON file")
    out: dict = {"runs": []}
    models: dict = {}
    for path in paths:
        path, _, only = str(path).partition(":")
        try:
            run = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise NtptError(f"--combine cannot read {path}: {e}; fix: pass a result JSON file of this runner") from None
        if only:
            keep_models = only.split(",")
            found = {name for kind in ("symbolic", "perceptual") for name in run.get(kind, {})}
            if set(keep_models) - found:
                raise NtptError(f"{path} has no model {sorted(set(keep_models) - found)}; it has {sorted(found)}")
            for kind in ("symbolic", "perceptual"):
                if kind in run:
                    run[kind] = {k: v for k, v in run[kind].items() if k in keep_models}
            run["models"] = {k: v for k, v in run.get("models", {}).items() if k in keep_models}
        kinds = [kind for kind in ("symbolic", "perceptual") if kind in run]
        if len(kinds) == 2:  # an earlier combination of both parts: its models are by kind
            for kind in kinds:
                models.setdefault(kind, {}).update(run.get("models", {}).get(kind, {}))
        else:
            models.setdefault(kinds[0] if kinds else "perceptual", {}).update(run.get("models", {}))
        for kind in ("symbolic", "perceptual"):
            for name, acc in run.get(kind, {}).items():
                if name in out.setdefault(kind, {}):
                    raise NtptError(f"model {name!r} ({kind}) is in two of the files to combine; fix: pass each model once")
                out[kind][name] = acc
        keep = ("part", "command", "wall_s", "machine", "train_digits", "max_digits", "test_n", "seed",
                "paper_at_16_digits", "symbol_accuracy", "library")
        if "runs" in run and not only:  # an earlier combination: its runs, not the combining command
            out["runs"] += run["runs"]
        else:
            out["runs"].append({"file": path, **({"models": only.split(",")} if only else {}),
                                **{k: run[k] for k in keep if k in run}})
        for key in ("train_digits", "max_digits", "paper_at_16_digits", "symbol_accuracy", "library"):
            if key in run:
                out.setdefault(key, run[key])
    out["models"] = next(iter(models.values())) if len(models) == 1 else models  # by kind when both are present
    return out
