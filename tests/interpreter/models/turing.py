# A Turing machine with a learned transition table (TerpreT's classic
# benchmark), trained to invert a binary tape.
#
# Symbols: 0, 1, and 2 = blank, which ends the input (the tape wraps around).
# State 0 halts; the machine starts in state 1 at cell 0.
#
# Intended solution (directions: 0 stay, 1 right, 2 left):
#   in state 1 reading 0: write 1, move right, stay in state 1
#   in state 1 reading 1: write 0, move right, stay in state 1
#   in state 1 reading 2: write 2, (any move), go to state 0 (halt)
#   i.e. write[1] = [1, 0, 2], dir[1] = [1, 1, *], newState[1] = [1, 1, 0];
#   the row of state 0 is never used. With tapeLength L it reads the blank
#   at time step L - 1 and is halted from step L on: numTimesteps >= L + 1.
from dummy import Hyper, Input, Output, Param, Runtime, Var

tapeLength = Hyper()
numTimesteps = Hyper()
numTapeSymbols = 3
numHeadStates = 2
numDirections = 3

initial_tape = Input(numTapeSymbols)[tapeLength]
final_tape = Output(numTapeSymbols)[tapeLength]
final_is_halted = Output(2)

write = Param(numTapeSymbols)[numHeadStates, numTapeSymbols]
dir = Param(numDirections)[numHeadStates, numTapeSymbols]
newState = Param(numHeadStates)[numHeadStates, numTapeSymbols]

tape = Var(numTapeSymbols)[numTimesteps, tapeLength]
pos = Var(tapeLength)[numTimesteps]
state = Var(numHeadStates)[numTimesteps]
halted = Var(2)[numTimesteps]
written = Var(numTapeSymbols)[numTimesteps - 1]
active = Var(2)[numTimesteps - 1, tapeLength]


@Runtime([tapeLength, numDirections], tapeLength)
def move(p, d):
    if d == 1:
        return (p + 1) % tapeLength
    if d == 2:
        return (p - 1) % tapeLength
    return p


@Runtime([tapeLength, tapeLength], 2)
def same_cell(a, b):
    return 1 if a == b else 0


@Runtime([numHeadStates], 2)
def is_halt_state(s):
    return 1 if s == 0 else 0


pos[0].set_to(0)
state[0].set_to(1)
halted[0].set_to(0)
for p in range(tapeLength):
    tape[0, p].set_to(initial_tape[p])

for t in range(numTimesteps - 1):
    if halted[t] == 1:
        written[t].set_to(0)
        pos[t + 1].set_to(pos[t])
        state[t + 1].set_to(state[t])
    else:
        with state[t] as s:
            with pos[t] as p:
                with tape[t, p] as sym:
                    written[t].set_to(write[s, sym])
                    pos[t + 1].set_to(move(p, dir[s, sym]))
                    state[t + 1].set_to(newState[s, sym])
    halted[t + 1].set_to(is_halt_state(state[t + 1]))

    for m in range(tapeLength):
        active[t, m].set_to(same_cell(m, pos[t]))
        if halted[t] == 0:
            if active[t, m] == 1:
                tape[t + 1, m].set_to(written[t])
            else:
                tape[t + 1, m].set_to(tape[t, m])
        else:
            tape[t + 1, m].set_to(tape[t, m])

final_is_halted.set_to(halted[numTimesteps - 1])
for p in range(tapeLength):
    final_tape[p].set_to(tape[numTimesteps - 1, p])
