"""Subcommands of the resnet-gui command line."""
