"""How a task's name becomes MLflow names and a folder name (no MLflow import: the fast read path uses it too).

A task name is any text a user picks (``ADD2x2:top``, ``MATH``, ``maze/7x7``);
MLflow refuses ``:`` and ``/`` in registered model names and a file system
refuses others (``/``, ``..``, names over 255 bytes). :func:`escape` maps a
name reversibly, so two tasks never share a registered model or a folder:

- letters, digits, ``_`` and ``.`` stay as they are (a leading ``.`` is escaped,
  so no folder is ``.``, ``..`` or hidden);
- ``:`` becomes ``-``, so the paper's ``ADD2x2:top`` is ``ADD2x2-top`` as it always was;
- every other character, ``-`` and ``~`` included, becomes ``~XX`` for each byte
  of its UTF-8 encoding (``A-B`` -> ``A~2DB``, ``A/B`` -> ``A~2FB``).

:func:`check_task` rejects what cannot be stored this way; :func:`equals_filter`
builds the one kind of MLflow filter string the store needs without letting a
value end its quotes.
"""

from __future__ import annotations

import re
import string

from ..interpreter.errors import NtptError

__all__ = ["MAX_ESCAPED", "check_net_name", "check_stored_task", "check_task", "equals_filter", "escape", "net_model",
           "program_model", "task_folder", "unescape"]

MAX_ESCAPED = 200  # MLflow keeps registered model names in 256 characters, a folder name has 255 bytes
_KEPT = frozenset(string.ascii_letters + string.digits + "_.")
_ESCAPES = re.compile(r"(?:~[0-9A-F]{2})+")


def escape(text: str) -> str:
    """``text`` in letters, digits and ``_ . - ~``, reversibly (see the module docstring).

    Example:
        >>> escape("ADD2x2:top"), escape("A/B"), escape("A-B"), escape("..")
        ('ADD2x2-top', 'A~2FB', 'A~2DB', '~2E.')
    """
    out = []
    for i, char in enumerate(text):
        if char in _KEPT and not (i == 0 and char == "."):
            out.append(char)
        elif char == ":":
            out.append("-")
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def unescape(name: str) -> str:
    """The text that :func:`escape` turned into ``name``.

    Example:
        >>> unescape("ADD2x2-top"), unescape("A~2FB"), unescape("~2E.")
        ('ADD2x2:top', 'A/B', '..')
    """
    def decode(run: re.Match) -> str:
        return bytes.fromhex(run.group(0).replace("~", "")).decode("utf-8")

    return _ESCAPES.sub(decode, name.replace("-", ":"))


def check_task(task: object) -> str:
    """``task`` if the store can keep it under its own names, else an :class:`NtptError` with the rule and the fix.

    Example:
        >>> check_task("ADD2x2:top")
        'ADD2x2:top'
    """
    if not isinstance(task, str) or not task:
        raise NtptError(f"a task name is a non-empty string, but got {task!r}; fix: pass a name such as 'MATH'")
    shown = repr(task if len(task) <= 60 else task[:60] + "...")
    bad = next((char for char in task if not char.isprintable()), None)
    if bad is not None:
        raise NtptError(
            f"task name {shown} holds the control character {bad!r}; a task name is printable text "
            "(no tabs, newlines or other control characters); fix: remove it"
        )
    length = len(escape(task))
    if length > MAX_ESCAPED:
        raise NtptError(
            f"task name {shown} is too long to store: {length} characters once escaped for MLflow, at most "
            f"{MAX_ESCAPED} (letters, digits, '_', '.' and ':' count 1, any other character 3 per UTF-8 byte); "
            "fix: use a shorter name"
        )
    return task


def program_model(task: str) -> str:
    """Registered model name of a task's programs (``models:/ntpt.program.<escaped task>@champion``).

    The task's own name stays in the registered model's tag ``ntpt.task``.

    Example:
        >>> program_model("ADD2x2:top"), program_model("A/B")
        ('ntpt.program.ADD2x2-top', 'ntpt.program.A~2FB')
    """
    return "ntpt.program." + escape(check_task(task))


def check_net_name(name: object) -> str:
    """``name`` if it names a network (a Python identifier, as ``@Learn`` functions are), else an :class:`NtptError`.

    An identifier has no ``.``, so ``ntpt.<name>`` never equals a program's
    ``ntpt.program.<task>`` or the merge lock ``ntpt.lock.merge``.

    Example:
        >>> check_net_name("net_0")
        'net_0'
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise NtptError(
            f"a network name is a Python identifier (the name of its @Learn function), but got {name!r}; "
            "fix: rename the network"
        )
    return name


def net_model(name: str) -> str:
    """Registered model name of a library network: ``ntpt.<name>`` (``models:/ntpt.net_0@champion``).

    Example:
        >>> net_model("net_0")
        'ntpt.net_0'
    """
    return "ntpt." + check_net_name(name)


def task_folder(task: str) -> str:
    """The folder of a task's artifacts inside the store's artifact root.

    Example:
        >>> task_folder("ADD2x2:top"), task_folder("..")
        ('ADD2x2-top', '~2E.')
    """
    return escape(check_task(task))


def equals_filter(field: str, value: str) -> str:
    """The MLflow filter ``field = 'value'``; MLflow has no escape inside quotes, so a quote is refused.

    Raises:
        NtptError: ``value`` holds a quote (escaped names never do).

    Example:
        >>> equals_filter("name", "ntpt.program.MATH")
        "name = 'ntpt.program.MATH'"
    """
    if "'" in value or "\\" in value:
        raise NtptError(
            f"{value!r} cannot be searched for in MLflow (its filters cannot quote \"'\" or '\\'); "
            "fix: use a name without quotes or backslashes"
        )
    return f"{field} = '{value}'"


def check_stored_task(stored: object, task: str, where: str) -> None:
    """A program read for ``task`` must have been stored for it: older releases mapped ``A-B``, ``A/B``
    and ``A:B`` to one registered model, so such a store can hold another task's programs under its name.

    Raises:
        NtptError: the record names another task.
    """
    if stored is not None and stored != task:
        raise NtptError(
            f"{where} was stored for task {stored!r}, not {task!r}: a release before task names were escaped "
            f"registered both under {program_model(task)!r}; fix: rename that registered model to "
            f"{program_model(str(stored))!r} (docs/store.md, 'Task names')"
        )
