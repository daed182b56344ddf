# ruff: noqa
# A boolean circuit of n_gates two-input gates whose gate types (op) and
# wiring (src1, src2) are Params; wires 0..2 are the inputs, wire 3 + g is the
# output of gate g, which may read only earlier wires (a later one reads 0).
# The last two wires are the outputs. Trained on the 8-row truth table of a
# full adder (total = a XOR b XOR carry_in, carry_out = majority).
#
# Intended solution (one of several; ops: 0 AND, 1 OR, 2 XOR, 3 NAND):
#   gate 0: wire 3 = a XOR b             op[0] = 2, src1[0] = 0, src2[0] = 1
#   gate 1: wire 4 = a AND b             op[1] = 0, src1[1] = 0, src2[1] = 1
#   gate 2: wire 5 = wire 3 AND carry_in op[2] = 0, src1[2] = 3, src2[2] = 2
#   gate 3: wire 6 = wire 3 XOR carry_in op[3] = 2, src1[3] = 3, src2[3] = 2  -> total
#   gate 4: wire 7 = wire 4 OR wire 5    op[4] = 1, src1[4] = 4, src2[4] = 5  -> carry_out
from dummy import Inline, Input, Output, Param, Runtime, Var

n_in = 3
n_gates = 5
n_wires = n_in + n_gates
n_ops = 4

a = Input(2)
b = Input(2)
carry_in = Input(2)
total = Output(2)
carry_out = Output(2)

op = Param(n_ops)[n_gates]
src1 = Param(n_wires)[n_gates]
src2 = Param(n_wires)[n_gates]

wire = Var(2)[n_wires]
arg1 = Var(2)[n_gates]
arg2 = Var(2)[n_gates]


@Runtime([n_ops, 2, 2], 2)
def gate(op, x, y):
    if op == 0:
        return x & y
    elif op == 1:
        return x | y
    elif op == 2:
        return x ^ y
    return 1 - (x & y)


@Inline()
def select_wire(source, dest, n_ready):
    # Only wires computed before this gate carry a value.
    with source as i:
        if i < n_ready:
            dest.set_to(wire[i])
        else:
            dest.set_to(0)


wire[0].set_to(a)
wire[1].set_to(b)
wire[2].set_to(carry_in)
for g in range(n_gates):
    select_wire(src1[g], arg1[g], n_in + g)
    select_wire(src2[g], arg2[g], n_in + g)
    wire[n_in + g].set_to(gate(op[g], arg1[g], arg2[g]))

total.set_to(wire[n_wires - 2])
carry_out.set_to(wire[n_wires - 1])
