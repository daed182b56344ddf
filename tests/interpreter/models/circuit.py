# A boolean circuit of numGates gates whose types and wiring are learned
# (TerpreT's circuit benchmark, here with one fresh wire per gate).
#
# Wires 0 and 1 hold the inputs a and b; gate g computes
# gate_type[g](wire in1[g], wire in2[g]) and writes it to wire 2 + g (wires not
# yet written read 0). The outputs are the wires chosen by out_sum and
# out_carry. Trained on the truth table of a half adder: sum = a XOR b,
# carry = a AND b. (A full adder with 5 gates is TerpreT's harder benchmark:
# few random restarts of gradient descent find it, too slow for a unit test.)
#
# Intended solution (one of many; gate types 0 AND, 1 OR, 2 XOR, 3 NOT, 4 NOP;
# the third gate is spare and may compute anything):
#   w2 = a XOR b    gate_type[0] = 2, in1[0] = 0, in2[0] = 1
#   w3 = a AND b    gate_type[1] = 0, in1[1] = 0, in2[1] = 1
#   out_sum = 2, out_carry = 3
from dummy import Input, Output, Param, Runtime, Var

numInputs = 2
numGates = 3
numWires = numInputs + numGates
numGateTypes = 5

a = Input(2)
b = Input(2)
sum_out = Output(2)
carry_out = Output(2)

gate_type = Param(numGateTypes)[numGates]
in1 = Param(numWires)[numGates]
in2 = Param(numWires)[numGates]
out_sum = Param(numWires)
out_carry = Param(numWires)

# wires[g, w]: wire w before gate g runs; wires not yet written hold 0.
wires = Var(2)[numGates + 1, numWires]
arg1 = Var(2)[numGates]
arg2 = Var(2)[numGates]


@Runtime([2, 2], 2)
def AND(x, y):
    return int(x and y)


@Runtime([2, 2], 2)
def OR(x, y):
    return int(x or y)


@Runtime([2, 2], 2)
def XOR(x, y):
    return x ^ y


@Runtime([2], 2)
def NOT(x):
    return 1 - x


@Runtime([2], 2)
def NOP(x):
    return x


wires[0, 0].set_to(a)
wires[0, 1].set_to(b)
for w in range(numInputs, numWires):
    wires[0, w].set_to_constant(0)

for g in range(numGates):
    with in1[g] as i:
        arg1[g].set_to(wires[g, i])
    with in2[g] as j:
        arg2[g].set_to(wires[g, j])
    for w in range(numWires):
        if w == numInputs + g:
            if gate_type[g] == 0:
                wires[g + 1, w].set_to(AND(arg1[g], arg2[g]))
            elif gate_type[g] == 1:
                wires[g + 1, w].set_to(OR(arg1[g], arg2[g]))
            elif gate_type[g] == 2:
                wires[g + 1, w].set_to(XOR(arg1[g], arg2[g]))
            elif gate_type[g] == 3:
                wires[g + 1, w].set_to(NOT(arg1[g]))
            else:
                wires[g + 1, w].set_to(NOP(arg1[g]))
        else:
            wires[g + 1, w].set_to(wires[g, w])

with out_sum as s:
    sum_out.set_to(wires[numGates, s])
with out_carry as c:
    carry_out.set_to(wires[numGates, c])
