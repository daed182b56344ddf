"""Pass 1: model source -> :class:`ModuleIR` (declarations, functions, statements).

The model is read with :mod:`ast` and never executed as Python. The bodies of
``@Runtime`` functions are evaluated at compile time on every argument tuple to
build their lookup tables, by the checked, bounded evaluator of
:mod:`.runtime_eval` (TerpreT ``exec``s them; here a model file stays data).
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Mapping

import numpy as np

from .errors import SourceError
from .ir import Decl, LearnFn, RuntimeFn, Span, TensorArg, TensorDecl
from .module_ir import MAX_NESTING, VALUE_BOUND, ConstantBound, ModuleIR, NotConstant, const_eval, show_int
from .runtime_eval import tabulate

__all__ = ["ModuleIR", "parse"]

DECL_KINDS = {"Input": "input", "Output": "output", "Param": "param", "Var": "var"}
DECORATORS = ("Runtime", "Learn", "Inline")
MAX_RUNTIME_TABLE = 10_000_000  # entries; the body runs once per entry at compile time
MAX_SOURCE_CHARS = 1_000_000  # a model file; the shipped ones are under 10,000
MAX_RANGE = 65_536  # values of one Input/Output/Param/Var, and any one size (a dimension, a hidden layer)
MAX_DIMS = 8  # dimensions of an array or a tensor
MAX_ELEMENTS = 1_000_000  # elements of one declared array (product of its sizes)
MAX_VALUES = 10_000_000  # sum over declarations of elements x range: the one-hot state of one restart and example
MAX_NET_WEIGHTS = 10_000_000  # weights of one @Learn network


def parse(source: str, filename: str = "<string>", hypers: Mapping[str, int] | None = None) -> ModuleIR:
    """Parse model source into a :class:`ModuleIR`.

    Args:
        source: the model text (Python syntax).
        filename: shown in errors.
        hypers: values of the model's ``Hyper()`` constants.

    Raises:
        SourceError: syntax errors, missing hypers, malformed declarations or functions.

    Example:
        >>> ir = parse("N = 3\\nx = Input(N)[2]\\n")
        >>> ir.decls["x"].shape
        (2,)
    """
    hypers = dict(hypers or {})
    tree = _syntax_tree(source, filename)
    ir = ModuleIR(source, filename)
    _check_nesting(ir, tree)
    try:
        for node in tree.body:
            _module_statement(ir, node, hypers)
        _check_sizes(ir)
    except ConstantBound as e:
        raise ir.error(e.why, e.node, "use smaller constants; sizes and loop bounds are far below 2**64") from None
    return ir


def _syntax_tree(source: str, filename: str) -> ast.Module:
    """``ast.parse`` with the source size bounded and the parser's own limits reported at a line."""
    if not isinstance(source, str):
        raise SourceError(f"model source must be text (str), but got {type(source).__name__}",
                          Span(filename, 1, 0, 1, 1), "", "pass the file's text, e.g. Path(f).read_text()")
    if len(source) > MAX_SOURCE_CHARS:
        raise SourceError(f"the model source has {len(source):,} characters, more than the {MAX_SOURCE_CHARS:,} "
                          "allowed", Span(filename, 1, 0, 1, 1), "", "models are short programs; check the file")
    try:
        with warnings.catch_warnings():  # Python's hints about Python (`1if x`) are not the model's errors
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(source, filename=filename)
    except SyntaxError as e:
        line = e.lineno or 1
        span = Span(filename, line, max((e.offset or 1) - 1, 0), line, max(e.offset or 1, 1))
        raise SourceError(f"invalid syntax: {e.msg}", span, source) from None
    except (RecursionError, MemoryError, ValueError) as e:
        line = _deepest_line(source)
        what = "is too long or nests too deeply to parse" if not isinstance(e, ValueError) else f"cannot be parsed ({e})"
        raise SourceError(f"the expression on this line {what}", Span(filename, line, 0, line, 1), source,
                          f"split it into shorter expressions; expressions nest at most {MAX_NESTING} deep") from None


def _deepest_line(source: str) -> int:
    """The line with the deepest bracket nesting (else the longest): where a parser's limit was probably hit."""
    best, best_key, depth = 1, (-1, -1), 0
    for number, line in enumerate(source.splitlines(), 1):
        deepest = depth
        for ch in line:
            depth += ch in "([{"
            depth -= ch in ")]}"
            deepest = max(deepest, depth)
        if (deepest, len(line)) > best_key:
            best, best_key = number, (deepest, len(line))
    return best


def _check_nesting(ir: ModuleIR, tree: ast.Module) -> None:
    """Every node at most ``MAX_NESTING`` deep, so the recursive passes after this never overflow the stack."""
    stack: list[tuple[ast.AST, int, ast.AST]] = [(tree, 0, tree)]
    while stack:
        node, depth, located = stack.pop()
        located = node if hasattr(node, "lineno") else located  # `Load` and operator nodes carry no line
        if depth > MAX_NESTING:
            raise ir.error(f"this nests more than {MAX_NESTING} deep (expressions and statements together)",
                           located, "split long expressions with local names or Vars, and flatten nested blocks")
        stack.extend((child, depth + 1, located) for child in ast.iter_child_nodes(node))


def _check_sizes(ir: ModuleIR) -> None:
    """The total one-hot state of the declarations, and each network's weights, within their limits."""
    total = 0
    for d in ir.decls.values():
        total += math.prod(d.shape) * d.size
        if total > MAX_VALUES:
            raise SourceError(f"the declarations up to '{d.name}' hold over {MAX_VALUES:,} values (elements x range), "
                           "more than allowed", d.span, ir.source, "use smaller arrays or ranges")
    for t in ir.tensors.values():
        total += math.prod(t.shape) * math.prod(t.elem_shape)
        if total > MAX_VALUES:
            raise SourceError(f"the declarations up to InputTensor '{t.name}' hold over {MAX_VALUES:,} values, more "
                           "than allowed", t.span, ir.source, "use smaller tensors or fewer of them")


def _module_statement(ir: ModuleIR, node: ast.stmt, hypers: Mapping[str, int]) -> None:
    if isinstance(node, ast.ImportFrom) and node.module == "dummy":
        return  # TerpreT's `from dummy import Hyper, Param, ...`
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        raise ir.error("imports are not supported in a model (only TerpreT's `from dummy import ...`)", node,
                       "remove the import; model files are compiled, not run as Python")
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return  # a docstring
    if isinstance(node, ast.FunctionDef):
        _function(ir, node)
        return
    if isinstance(node, ast.If) and all(isinstance(s, (ast.Assign, ast.Pass)) for s in node.body + node.orelse):
        # TerpreT sizes things with `if lambdaLength > 0: size = ... else: size = ...`.
        try:
            taken = node.body if const_eval(node.test, ir.constants) else node.orelse
        except NotConstant:
            taken = None  # an `if` on an element: a statement, for unroll
        if taken is not None:
            for stmt in taken:
                _module_statement(ir, stmt, hypers)
            return
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        if name in ir.names():
            raise ir.error(f"'{name}' is declared twice", node.targets[0], "give the second declaration another name")
        if _declaration(ir, name, node, hypers):
            return
        try:
            ir.constants[name] = const_eval(node.value, ir.constants)
        except NotConstant as e:
            raise ir.error(f"module-level assignment to '{name}' is neither a declaration nor a constant: {e.why}",
                           e.node, "declare Input/Output/Param/Var/InputTensor, or use integer constants") from None
        return
    if isinstance(node, ast.Assign):
        raise ir.error("only single-name assignments are allowed at module level", node,
                       "write one `name = ...` per line")
    ir.body.append(node)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _const(ir: ModuleIR, node: ast.AST, what: str, minimum: int = 1, maximum: int = MAX_RANGE) -> int:
    try:
        value = const_eval(node, ir.constants)
    except NotConstant as e:
        raise ir.error(f"{what} must be a constant expression, but {e.why}", e.node,
                       "use integer literals, constants or Hyper() values") from None
    if value < minimum:
        raise ir.error(f"{what} must be at least {minimum}, but got {value}", node)
    if value > maximum:
        raise ir.error(f"{what} is {value:,}, more than the {maximum:,} allowed", node,
                       "check the constant or hyper-parameter; see the limits in docs/language.md")
    return value


def _shape(ir: ModuleIR, nodes: list[ast.expr], what: str, where: ast.AST) -> tuple[int, ...]:
    """Array (or tensor) sizes: at most ``MAX_DIMS`` of them, at most ``MAX_ELEMENTS`` elements in all."""
    if len(nodes) > MAX_DIMS:
        raise ir.error(f"{what} has {len(nodes)} dimensions, more than the {MAX_DIMS} allowed", where,
                       "use fewer dimensions")
    shape = tuple(_const(ir, d, what, maximum=MAX_ELEMENTS) for d in nodes)
    if math.prod(shape) > MAX_ELEMENTS:
        raise ir.error(f"{what} has {math.prod(shape):,} elements ({' x '.join(map(str, shape))}), more than the "
                       f"{MAX_ELEMENTS:,} allowed", where, "use smaller sizes")
    return shape


def _declaration(ir: ModuleIR, name: str, node: ast.Assign, hypers: Mapping[str, int]) -> bool:
    value = node.value
    shape: tuple[int, ...] = ()
    if isinstance(value, ast.Subscript):
        dims = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        shape = _shape(ir, dims, f"the array size of '{name}'", value.slice)
        value = value.value
    kind = _call_name(value)
    if kind == "Hyper":
        if shape:
            raise ir.error("Hyper() cannot be an array", node.value)
        if name not in hypers:
            raise ir.error(f"hyper-parameter '{name}' has no value", node.value,
                           f"pass it when compiling, e.g. compile_source(text, hypers={{'{name}': ...}})")
        value = hypers[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ir.error(f"hyper-parameter '{name}' must be an integer, but got {value!r}", node.value,
                           f"pass an int, e.g. hypers={{'{name}': 5}}")
        if not -VALUE_BOUND <= int(value) <= VALUE_BOUND:
            raise ir.error(f"hyper-parameter '{name}' is {show_int(int(value))}, beyond the ±2**64 allowed", node.value,
                           "pass a smaller value; sizes and loop bounds are far below 2**64")
        ir.constants[name] = int(value)
        return True
    if kind in DECL_KINDS:
        if len(value.args) != 1 or value.keywords:
            raise ir.error(f"{kind}(K) takes exactly one argument, the number of values, but got {len(value.args)}",
                           value, f"write e.g. `{name} = {kind}(10)`")
        size = _const(ir, value.args[0], f"the range of {kind} '{name}'")
        ir.decls[name] = Decl(name, DECL_KINDS[kind], size, shape, ir.span(node))
        return True
    if kind == "InputTensor":
        if not value.args:
            raise ir.error("InputTensor(d1, d2, ...) needs the tensor's dimensions", value)
        dims = _shape(ir, value.args, f"InputTensor '{name}'", value)
        ir.tensors[name] = TensorDecl(name, dims, shape, ir.span(node))
        return True
    if shape:
        raise ir.error(f"'{name}': only Input/Output/Param/Var/InputTensor declarations can be arrays", node.value)
    return False


def _function(ir: ModuleIR, node: ast.FunctionDef) -> None:
    if node.name in ir.names():
        raise ir.error(f"'{node.name}' is declared twice", node, "rename the function")
    if len(node.decorator_list) != 1:
        raise ir.error(f"function '{node.name}' needs exactly one decorator: @Runtime, @Learn or @Inline", node,
                       "model files define only decorated functions")
    deco = node.decorator_list[0]
    kind = deco.id if isinstance(deco, ast.Name) else _call_name(deco)
    if kind not in DECORATORS:
        raise ir.error(f"unknown decorator on '{node.name}'; expected @Runtime, @Learn or @Inline", deco)
    if kind == "Inline":
        ir.inlines[node.name] = node
    elif kind == "Runtime":
        ir.runtimes[node.name] = _runtime(ir, node, deco)
    else:
        ir.learns[node.name] = _learn(ir, node, deco)


def _list_arg(ir: ModuleIR, deco: ast.AST, what: str) -> list[ast.expr]:
    if not isinstance(deco, ast.Call) or not deco.args or not isinstance(deco.args[0], (ast.List, ast.Tuple)):
        raise ir.error(f"{what} needs a list of argument ranges first, e.g. @{what}([10, 10], 19)", deco)
    if len(deco.args) != 2:
        raise ir.error(f"{what}([args], out) takes two arguments, but got {len(deco.args)}", deco)
    return list(deco.args[0].elts)


def _runtime(ir: ModuleIR, node: ast.FunctionDef, deco: ast.AST) -> RuntimeFn:
    arg_nodes = _list_arg(ir, deco, "Runtime")
    if len(arg_nodes) > MAX_DIMS:
        raise ir.error(f"@Runtime '{node.name}' takes {len(arg_nodes)} arguments, more than the {MAX_DIMS} allowed",
                       deco, "split the function")
    arg_sizes = tuple(_const(ir, a, f"an argument range of @Runtime '{node.name}'") for a in arg_nodes)
    out = _const(ir, deco.args[1], f"the output range of @Runtime '{node.name}'")
    params = [a.arg for a in node.args.args]
    if len(params) != len(arg_sizes):
        raise ir.error(f"@Runtime '{node.name}' declares {len(arg_sizes)} argument range(s) but the function takes "
                       f"{len(params)} argument(s)", node, "give one range per argument")
    entries = math.prod(arg_sizes)  # Python ints: sizes of 10**400 neither overflow nor get printed in full
    if entries > MAX_RUNTIME_TABLE:
        shown = f"{entries:,} entries (argument ranges {list(arg_sizes)})" if entries < 10**30 else "over 10**30 entries"
        raise ir.error(f"@Runtime '{node.name}' would need a table of {shown}, more than the "
                       f"{MAX_RUNTIME_TABLE:,} allowed", deco, "use smaller argument ranges, or split the function")
    table = tabulate(ir, node, arg_sizes, out)  # the body is checked, then evaluated; never run as Python
    return RuntimeFn(node.name, arg_sizes, out, table, ir.span(node))


def _learn(ir: ModuleIR, node: ast.FunctionDef, deco: ast.AST) -> LearnFn:
    args: list[int | TensorArg] = []
    for a in _list_arg(ir, deco, "Learn"):
        if _call_name(a) == "Tensor":
            args.append(TensorArg(_shape(ir, a.args, "a Tensor argument", a)))
        else:
            args.append(_const(ir, a, f"an argument range of @Learn '{node.name}'"))
    out = _const(ir, deco.args[1], f"the output range of @Learn '{node.name}'")
    hid: tuple[int, ...] = ()
    for kw in deco.keywords:
        if kw.arg != "hid_sizes" or not isinstance(kw.value, (ast.List, ast.Tuple)):
            raise ir.error(f"@Learn takes only hid_sizes=[...] as a keyword, got {kw.arg}=", kw.value)
        hid = tuple(_const(ir, h, "a hidden layer size") for h in kw.value.elts)
    if len(node.args.args) != len(args):
        raise ir.error(f"@Learn '{node.name}' declares {len(args)} argument(s) but the function takes "
                       f"{len(node.args.args)}", node, "give one range or Tensor(...) per argument")
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if any(not isinstance(s, ast.Pass) for s in body):
        raise ir.error(f"the body of @Learn '{node.name}' must be `pass`: the network is learned", node.body[0])
    fn = LearnFn(node.name, tuple(args), out, hid, ir.span(node))
    sizes = [fn.in_features, *hid, out]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if weights > MAX_NET_WEIGHTS:
        raise ir.error(f"@Learn '{node.name}' would have {weights:,} weights (layers {sizes}), more than the "
                       f"{MAX_NET_WEIGHTS:,} allowed", deco, "use smaller hid_sizes or inputs")
    return fn
