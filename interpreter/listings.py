"""Paper-style listings of learned programs (Fig. 1, Fig. 3 and Fig. 4(b)).

Each function takes a :class:`~ntpt_dist.interpreter.program.Program` of the
matching model in ``experiments/models`` and returns text; the experiments'
registry attaches them to the compiled models so ``Program.listing()`` uses
them, and ``program.listing_registry`` names them, so a stored Program keeps
its listing. They live here (plain text functions, no imports) so that the
interpreter needs nothing from ``experiments``.
"""

from __future__ import annotations

MOVES = {1: "MOVE_NORTH", 2: "MOVE_EAST", 3: "MOVE_SOUTH", 4: "MOVE_WEST"}


def _net(params: dict, key: str, index=None) -> str:
    if key not in params:  # single-network model (the first task of a lifetime)
        return "net_0"
    value = params[key] if index is None else params[key][index]
    return f"net_{value}"


def listing_2x2(program) -> str:
    """Fig. 3 style: initial registers, one line per instruction, the return."""
    p = program.params
    apply = "arg3" in p
    n_aux = 3 if apply else 0
    out = ["# initialization:"]
    out += [f"R{k} = InputInt[{k}]" for k in range(n_aux)]
    out.append(f"R{n_aux} = READ({_net(p, 'read_net')})")
    out.append("# program:")
    for line, instr in enumerate(p["instr"]):
        reg = n_aux + 1 + line
        if instr == 0:
            text = "NOOP"
        elif instr in MOVES:
            text = f"{MOVES[instr]}({_net(p, 'net_choice', line)})"
        elif apply:
            text = f"APPLY(R{p['arg1'][line]}, R{p['arg2'][line]}, R{p['arg3'][line]})"
        else:
            text = f"ADD(R{p['arg1'][line]}, R{p['arg2'][line]})"
        out.append(f"R{reg} = {text}")
    out.append(f"return R{p['ret']}")
    return "\n".join(out)


def listing_math(program) -> str:
    """Fig. 4(b) style: three blocks with their GOTO_IF, then the halt block."""
    p = program.params
    out = []
    for b, instr in enumerate(p["instr"]):
        if instr == 0:
            body = f"MOVE; R{b} = READ(net_{p['net_choice'][b]})"
        else:
            body = f"R{b} = APPLY(R{p['arg1'][b]}, R{p['arg2'][b]}, R{p['arg3'][b]})"
        out.append(f"L{b}: {body}; GOTO_IF L{p['goto'][b]}")
    out.append(f"halt: return R{p['ret']}")
    return "\n".join(out)


MAZE_INSTR = {0: "reg = INC(reg)", 1: "reg = DEC(reg)", 2: "MOVE(dir)", 3: "dir = LOOK; halt if dir == 0"}


def listing_maze(program) -> str:
    """Fig. 1 style: each instruction with its goto target."""
    p = program.params
    return "\n".join(
        f"L{i}: {MAZE_INSTR[instr]}; goto L{p['goto'][i]}" for i, instr in enumerate(p["instr"])
    )
