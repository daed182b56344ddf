# ruff: noqa
# TerpreT's classic Turing machine: a tape of tapeLength cells over the symbols
# 0, 1 and blank (2), a head starting at cell 0 in state 0, and a learned
# transition table: for each (state, symbol read) the symbol written, the head
# move (0 left, 1 stay, 2 right; clamped at the tape ends) and the next state.
# It runs numTimesteps - 1 steps. Task: invert a binary word that is followed
# by at least one blank (so numTimesteps - 1 must exceed the word length).
#
# Intended solution (state 1 is "halted": it rewrites what it reads and stays):
#   write[0] = [1, 0, 2]   move[0] = [2, 2, 1]   next_state[0] = [0, 0, 1]
#   write[1] = [0, 1, 2]   move[1] = [1, 1, 1]   next_state[1] = [1, 1, 1]
from dummy import Hyper, Input, Output, Param, Runtime, Var

numTimesteps = Hyper()
tapeLength = Hyper()
n_states = 2
n_symbols = 3
n_moves = 3

initial_tape = Input(n_symbols)[tapeLength]
final_tape = Output(n_symbols)[tapeLength]

write = Param(n_symbols)[n_states, n_symbols]
move = Param(n_moves)[n_states, n_symbols]
next_state = Param(n_states)[n_states, n_symbols]

tape = Var(n_symbols)[numTimesteps, tapeLength]
head = Var(tapeLength)[numTimesteps]
state = Var(n_states)[numTimesteps]
symbol = Var(n_symbols)[numTimesteps]
written = Var(n_symbols)[numTimesteps]
direction = Var(n_moves)[numTimesteps]


@Runtime([tapeLength, n_moves], tapeLength)
def MOVE(pos, m):
    return min(max(pos + m - 1, 0), tapeLength - 1)


for p in range(tapeLength):
    tape[0, p].set_to(initial_tape[p])
head[0].set_to(0)
state[0].set_to(0)

for t in range(numTimesteps - 1):
    with head[t] as h:
        symbol[t].set_to(tape[t][h])
    with state[t] as q:
        with symbol[t] as s:
            written[t].set_to(write[q, s])
            direction[t].set_to(move[q, s])
            state[t + 1].set_to(next_state[q, s])
    head[t + 1].set_to(MOVE(head[t], direction[t]))
    for p in range(tapeLength):
        with head[t] as h:
            if h == p:
                tape[t + 1, p].set_to(written[t])
            else:
                tape[t + 1, p].set_to(tape[t, p])

for p in range(tapeLength):
    final_tape[p].set_to(tape[numTimesteps - 1, p])
