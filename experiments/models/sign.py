# SIGN: which way one street sign points (0 halt, 1 east, 2 north, 3 west, 4
# south). The maze's LOOK network learned as a task of its own, earlier in the
# lifetime, so that the maze (Fig. 1) can take it from the library and search
# only its program: the paper's idea of a library of neural functions.
from dummy import InputTensor, Learn, Output

img = InputTensor(3, 32, 32)
dir = Output(5)


@Learn([Tensor(3, 32, 32)], 5, hid_sizes=[256, 256])
def LOOK(img):
    pass


dir.set_to(LOOK(img))
