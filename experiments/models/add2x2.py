# ADD2x2 straight-line model (paper section 4.2) with the two-network library:
# every READ chooses net_0 (digits) or net_1 (operators) through a learned
# net_choice. The head starts on the top-left cell and R0 = READ of it; each of
# up to n_lines lines writes one immutable register.
#
# Intended solution for ADD2x2:right (Fig. 3(a) style):
#   R0 = READ(net_0); R1 = MOVE_EAST(net_0); R2 = MOVE_SOUTH(net_0); R3 = ADD(R1, R2); R4 = NOOP; return R3
from dummy import Hyper, Input, InputTensor, Learn, Output, Param, Runtime, Var

M = 19            # registers hold 0..18; every operation is modulo 19 (the paper's M = 18)
n_lines = 4
n_regs = n_lines + 1
n_instr = 6       # 0 NOOP, 1 MOVE_NORTH, 2 MOVE_EAST, 3 MOVE_SOUTH, 4 MOVE_WEST, 5 ADD

grid = InputTensor(28, 28)[2, 2]
result = Output(M)

read_net = Param(2)
instr = Param(n_instr)[n_lines]
net_choice = Param(2)[n_lines]
arg1 = Param(n_regs)[n_lines]
arg2 = Param(n_regs)[n_lines]
ret = Param(n_regs)

pos = Var(4)[n_lines + 1]          # head cell, 2 * row + column
digit = Var(10)[n_lines + 1]       # net_0's reading of the head's cell
symbol = Var(4)[n_lines + 1]       # net_1's reading of the head's cell
x1 = Var(M)[n_lines]
x2 = Var(M)[n_lines]
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


@Runtime([M, M], M)
def add(a, b):
    return (a + b) % M


pos[0].set_to_constant(0)
with pos[0] as p:
    digit[0].set_to(net_0(grid[p // 2, p % 2]))
    symbol[0].set_to(net_1(grid[p // 2, p % 2]))
if read_net == 0:
    reg[0].set_to(from_digit(digit[0]))
else:
    reg[0].set_to(from_symbol(symbol[0]))

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
        if a <= l:
            x1[l].set_to(reg[a])
        else:
            x1[l].set_to_constant(0)
    with arg2[l] as b:
        if b <= l:
            x2[l].set_to(reg[b])
        else:
            x2[l].set_to_constant(0)
    if instr[l] == 0:
        reg[l + 1].set_to_constant(0)
    elif instr[l] == 5:
        reg[l + 1].set_to(add(x1[l], x2[l]))
    elif net_choice[l] == 0:
        reg[l + 1].set_to(from_digit(digit[l + 1]))
    else:
        reg[l + 1].set_to(from_symbol(symbol[l + 1]))

with ret as r:
    result.set_to(reg[r])
