"""resnet-gui: build, analyse, train and inspect residual networks."""

import os

# Let idle OpenMP threads sleep instead of spinning at every barrier. When another program
# (or the window's own thread) keeps a core busy, spinning threads starve the one doing the
# work: on a 2-core machine with a busy neighbour, training ran 3-4x slower with spinning than
# without (benchmarks/bench_train_cpu.py). OpenMP reads it once, when torch first loads, so it
# is set here, before any of our modules can import torch; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
