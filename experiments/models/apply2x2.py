# APPLY2x2 straight-line model (paper section 4.2): the ADD2x2 model with ADD
# extended to APPLY(a, b, op), which reads the integer in register op as an
# operator (op % 4: 0 +, 1 -, 2 *, 3 /) and computes a op b modulo 19 (integer
# division; division by zero gives 18). Registers R0..R2 hold the auxiliary
# integers d1 d2 d3, R3 = READ of the top-left cell, then one register per line.
#
# Intended solution for APPLY2x2:right (Fig. 3(b)):
#   R4 = MOVE_EAST(net_1); R5 = MOVE_SOUTH(net_1); R6 = APPLY(R0, R1, R4);
#   R7 = APPLY(R6, R2, R5); return R7
from dummy import Hyper, Input, InputTensor, Learn, Output, Param, Runtime, Var

M = 19            # registers hold 0..18; every operation is modulo 19 (the paper's M = 18)
n_lines = 4
n_aux = 3
n_regs = n_aux + 1 + n_lines   # R0..R2 aux, R3 = READ, one per line
n_instr = 6       # 0 NOOP, 1 MOVE_NORTH, 2 MOVE_EAST, 3 MOVE_SOUTH, 4 MOVE_WEST, 5 APPLY

grid = InputTensor(28, 28)[2, 2]
aux = Input(10)[n_aux]
result = Output(M)

read_net = Param(2)
instr = Param(n_instr)[n_lines]
net_choice = Param(2)[n_lines]
arg1 = Param(n_regs)[n_lines]
arg2 = Param(n_regs)[n_lines]
arg3 = Param(n_regs)[n_lines]
ret = Param(n_regs)

pos = Var(4)[n_lines + 1]          # head cell, 2 * row + column
digit = Var(10)[n_lines + 1]       # net_0's reading of the head's cell
symbol = Var(4)[n_lines + 1]       # net_1's reading of the head's cell
x1 = Var(M)[n_lines]
x2 = Var(M)[n_lines]
x3 = Var(M)[n_lines]
op = Var(4)[n_lines]
reg = Var(M)[n_regs]


@Learn([Tensor(28, 28)], 10, hid_sizes=[256, 256])
def net_0(img):
    pass


@Learn([Tensor(28, 28)], 4, hid_sizes=[256, 256])
def net_1(img):
    pass


@Runtime([10], M)
def from_digit(d):
    return d


@Runtime([4], M)
def from_symbol(s):
    return s


@Runtime([4], 4)
def move_north(p):
    return p - 2 if p >= 2 else p


@Runtime([4], 4)
def move_east(p):
    return p + 1 if p % 2 == 0 else p


@Runtime([4], 4)
def move_south(p):
    return p + 2 if p < 2 else p


@Runtime([4], 4)
def move_west(p):
    return p - 1 if p % 2 == 1 else p


@Runtime([10], M)
def from_aux(d):
    return d


@Runtime([M], 4)
def to_op(v):
    return v % 4


@Runtime([M, M, 4], M)
def apply(a, b, o):
    if o == 0:
        return (a + b) % M
    if o == 1:
        return (a - b) % M
    if o == 2:
        return (a * b) % M
    return (a // b) % M if b != 0 else M - 1


for k in range(n_aux):
    reg[k].set_to(from_aux(aux[k]))

pos[0].set_to_constant(0)
with pos[0] as p:
    digit[0].set_to(net_0(grid[p // 2, p % 2]))
    symbol[0].set_to(net_1(grid[p // 2, p % 2]))
if read_net == 0:
    reg[n_aux].set_to(from_digit(digit[0]))
else:
    reg[n_aux].set_to(from_symbol(symbol[0]))

for l in range(n_lines):
    if instr[l] == 1:
        pos[l + 1].set_to(move_north(pos[l]))
    elif instr[l] == 2:
        pos[l + 1].set_to(move_east(pos[l]))
    elif instr[l] == 3:
        pos[l + 1].set_to(move_south(pos[l]))
    elif instr[l] == 4:
        pos[l + 1].set_to(move_west(pos[l]))
    else:
        pos[l + 1].set_to(pos[l])
    with pos[l + 1] as p:
        digit[l + 1].set_to(net_0(grid[p // 2, p % 2]))
        symbol[l + 1].set_to(net_1(grid[p // 2, p % 2]))
    # argument registers; a line may only read registers written before it
    with arg1[l] as a:
        if a <= n_aux + l:
            x1[l].set_to(reg[a])
        else:
            x1[l].set_to_constant(0)
    with arg2[l] as b:
        if b <= n_aux + l:
            x2[l].set_to(reg[b])
        else:
            x2[l].set_to_constant(0)
    with arg3[l] as c:
        if c <= n_aux + l:
            x3[l].set_to(reg[c])
        else:
            x3[l].set_to_constant(0)
    op[l].set_to(to_op(x3[l]))
    if instr[l] == 0:
        reg[n_aux + 1 + l].set_to_constant(0)
    elif instr[l] == 5:
        reg[n_aux + 1 + l].set_to(apply(x1[l], x2[l], op[l]))
    elif net_choice[l] == 0:
        reg[n_aux + 1 + l].set_to(from_digit(digit[l + 1]))
    else:
        reg[n_aux + 1 + l].set_to(from_symbol(symbol[l + 1]))

with ret as r:
    result.set_to(reg[r])
