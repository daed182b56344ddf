# MATH model (paper section 4.3, Fig. 4(a)): three blocks, each a MOVE (head++,
# read the new symbol with the block's chosen network into the block's
# register) or an APPLY (three register addresses: a, b, op), followed by
# GOTO_IF: while the head is not past the end of the tape jump to the block's
# goto address, else halt and return the chosen register.
# Registers start at 0; register value 0 read as an operator is "+".
#
# Intended solution (Fig. 4(b)), which generalises to any tape length:
#   L0: MOVE; R0 = READ(net_0); GOTO_IF L1
#   L1: R1 = APPLY(R1, R0, R2); GOTO_IF L2
#   L2: MOVE; R2 = READ(net_1); GOTO_IF L0
#   halt: return R1
from dummy import Hyper, Input, InputTensor, Learn, Output, Param, Runtime, Var

N = Hyper()               # digits on the tape
L = 2 * N - 1             # tape length: d op d op ... d
T = 3 * N + 1             # time steps: three blocks per digit, then halt
M = 19                    # registers hold 0..18, operations modulo 19
n_blocks = 3
P = L + 2                 # head positions: 0 before the tape, p on symbol p - 1, L + 1 past the end

tape = InputTensor(28, 28)[L]
result = Output(M)

instr = Param(2)[n_blocks]          # 0 MOVE, 1 APPLY
net_choice = Param(2)[n_blocks]
arg1 = Param(n_blocks)[n_blocks]
arg2 = Param(n_blocks)[n_blocks]
arg3 = Param(n_blocks)[n_blocks]
goto = Param(n_blocks)[n_blocks]
ret = Param(n_blocks)

ip = Var(n_blocks)[T + 1]
pos = Var(P)[T + 1]
halted = Var(2)[T + 1]
at_end = Var(2)[T]
reg = Var(M)[T + 1, n_blocks]
next_pos = Var(P)[T]
digit = Var(10)[T]
symbol = Var(4)[T]
x1 = Var(M)[T]
x2 = Var(M)[T]
x3 = Var(M)[T]
op = Var(4)[T]
applied = Var(M)[T]


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


@Runtime([P], P)
def advance(p):
    return min(p + 1, P - 1)


@Runtime([P], 2)
def past_end(p):
    return 1 if p == P - 1 else 0


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


ip[0].set_to_constant(0)
pos[0].set_to_constant(0)
halted[0].set_to_constant(0)
for r in range(n_blocks):
    reg[0, r].set_to_constant(0)

for t in range(T):
    # what a MOVE would read: the symbol after the head, through either network
    next_pos[t].set_to(advance(pos[t]))
    with next_pos[t] as p:
        if p >= 1 and p <= L:
            digit[t].set_to(net_0(tape[p - 1]))
            symbol[t].set_to(net_1(tape[p - 1]))
        else:
            digit[t].set_to_constant(0)
            symbol[t].set_to_constant(0)
    # what an APPLY would compute: the current block's argument registers
    with ip[t] as i:
        with arg1[i] as a:
            x1[t].set_to(reg[t, a])
        with arg2[i] as b:
            x2[t].set_to(reg[t, b])
        with arg3[i] as c:
            x3[t].set_to(reg[t, c])
    op[t].set_to(to_op(x3[t]))
    applied[t].set_to(apply(x1[t], x2[t], op[t]))

    # execute the current block's instruction
    if halted[t] == 1:
        pos[t + 1].set_to(pos[t])
        for r in range(n_blocks):
            reg[t + 1, r].set_to(reg[t, r])
    else:
        with ip[t] as i:
            if instr[i] == 0:
                pos[t + 1].set_to(next_pos[t])
                for r in range(n_blocks):
                    if r == i:
                        if net_choice[i] == 0:
                            reg[t + 1, r].set_to(from_digit(digit[t]))
                        else:
                            reg[t + 1, r].set_to(from_symbol(symbol[t]))
                    else:
                        reg[t + 1, r].set_to(reg[t, r])
            else:
                pos[t + 1].set_to(pos[t])
                for r in range(n_blocks):
                    if r == i:
                        reg[t + 1, r].set_to(applied[t])
                    else:
                        reg[t + 1, r].set_to(reg[t, r])

    # GOTO_IF: continue at the block's goto address unless the head is past the end
    at_end[t].set_to(past_end(pos[t + 1]))
    if halted[t] == 1:
        halted[t + 1].set_to_constant(1)
        ip[t + 1].set_to(ip[t])
    elif at_end[t] == 1:
        halted[t + 1].set_to_constant(1)
        ip[t + 1].set_to(ip[t])
    else:
        halted[t + 1].set_to_constant(0)
        with ip[t] as i:
            ip[t + 1].set_to(goto[i])

with ret as r:
    result.set_to(reg[T, r])
