# ruff: noqa
# Fig. 1 of the paper ("Differentiable Programs with Neural Libraries") with
# the street-sign images replaced by integers: sign_grid[y, x] is the sign
# under the agent (0 halt, 1 east, 2 north, 3 west, 4 south), read directly
# where Fig. 1 calls the LOOK network. The paper's typos are fixed: final_Y is
# read from Y[T - 1] and is_halted_at_end from is_halted[T - 2].
#
# Intended solution (Fig. 1): instr = [3, 2, 0], goto = [1, 2, 0]
#   L0: dir = LOOK (sign under the agent); halt if dir == 0; goto L1
#   L1: MOVE(dir); goto L2
#   L2: reg = INC(reg); goto L0
# so path_len counts the moves made before the agent stands on a halt sign
# (each loop takes 3 steps: T - 1 steps allow (T - 2) // 3 moves).
from dummy import Hyper, Input, Output, Param, Runtime, Var

max_int = 15
n_instr = 3
T = Hyper()
W = Hyper()
H = Hyper()

sign_grid = Input(5)[H, W]
init_X = Input(W)
init_Y = Input(H)
final_X = Output(W)
final_Y = Output(H)
path_len = Output(max_int)
is_halted_at_end = Output(2)

instr = Param(4)[n_instr]
goto = Param(n_instr)[n_instr]

X = Var(W)[T]
Y = Var(H)[T]
dir = Var(5)[T]
reg = Var(max_int)[T]
instr_ptr = Var(n_instr)[T]
is_halted = Var(2)[T]


@Runtime([max_int], max_int)
def INC(a):
    return (a + 1) % max_int


@Runtime([max_int], max_int)
def DEC(a):
    return (a - 1) % max_int


@Runtime([W, 5], W)
def MOVE_X(x, dir):
    if dir == 1:
        return (x + 1) % W
    elif dir == 3:
        return (x - 1) % W
    else:
        return x


@Runtime([H, 5], H)
def MOVE_Y(y, dir):
    if dir == 2:
        return (y - 1) % H
    elif dir == 4:
        return (y + 1) % H
    else:
        return y


@Runtime([5], 2)
def eq_zero(dir):
    return 1 if dir == 0 else 0


X[0].set_to(init_X)
Y[0].set_to(init_Y)
dir[0].set_to(1)
reg[0].set_to(0)
instr_ptr[0].set_to(0)

for t in range(T - 1):
    is_halted[t].set_to(eq_zero(dir[t]))
    if is_halted[t] == 1:
        dir[t + 1].set_to(dir[t])
        X[t + 1].set_to(X[t])
        Y[t + 1].set_to(Y[t])
        reg[t + 1].set_to(reg[t])
        instr_ptr[t + 1].set_to(instr_ptr[t])
    elif is_halted[t] == 0:
        with instr_ptr[t] as i:
            if instr[i] == 0:
                reg[t + 1].set_to(INC(reg[t]))
            elif instr[i] == 1:
                reg[t + 1].set_to(DEC(reg[t]))
            else:
                reg[t + 1].set_to(reg[t])
            if instr[i] == 2:
                X[t + 1].set_to(MOVE_X(X[t], dir[t]))
                Y[t + 1].set_to(MOVE_Y(Y[t], dir[t]))
            else:
                X[t + 1].set_to(X[t])
                Y[t + 1].set_to(Y[t])
            if instr[i] == 3:
                with X[t] as x:
                    with Y[t] as y:
                        dir[t + 1].set_to(sign_grid[y, x])
            else:
                dir[t + 1].set_to(dir[t])
            instr_ptr[t + 1].set_to(goto[i])

final_X.set_to(X[T - 1])
final_Y.set_to(Y[T - 1])
path_len.set_to(reg[T - 1])
is_halted_at_end.set_to(is_halted[T - 2])
