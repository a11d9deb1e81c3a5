"""resnet-gui: build, analyse, train and inspect residual networks."""

__version__ = "0.1.0"
