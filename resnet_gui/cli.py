"""Command line: ``resnet-gui [ARCH] [--screenshot FILE]`` opens the window; subcommands
``presets``, ``summary``, ``export``, ``train`` and ``lab`` work without it.

Every user mistake ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from resnet_gui import __version__
from resnet_gui.errors import UsageError, UserError

SUBCOMMANDS = ("presets", "summary", "export", "train", "lab")


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line like every other mistake (the usage is in --help);
    subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        if message.endswith(": expected one argument"):
            option = message.split()[1].rstrip(":")
            message += f" (write a value that starts with '-' as {option}=VALUE)"
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _subcommand_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="resnet-gui",
        description="Build, analyse, train and inspect residual networks. "
        "With no subcommand, opens the window (optionally with ARCH loaded).",
        epilog="Window: resnet-gui [ARCH] [--screenshot FILE.png]   "
        "ARCH is a preset name (see 'resnet-gui presets') or an architecture JSON file.",
    )
    parser.add_argument("--version", action="version", version=f"resnet-gui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from resnet_gui.commands import lab as lab_command
    from resnet_gui.commands import network as network_commands
    from resnet_gui.commands import train as train_command

    network_commands.add_parsers(commands)
    train_command.add_parser(commands)
    lab_command.add_parser(commands)
    return parser


def _window_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="resnet-gui",
        description="Open the resnet-gui window. Subcommands: " + ", ".join(SUBCOMMANDS)
        + " (resnet-gui COMMAND --help).",
    )
    parser.add_argument("arch", nargs="?", help="preset name or architecture JSON file to open")
    parser.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="render the window offscreen at 1600x1000, write a PNG and exit",
    )
    parser.add_argument("--version", action="version", version=f"resnet-gui {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] in SUBCOMMANDS or args_list[:1] in (["-h"], ["--help"]):
            parser = _subcommand_parser()
            args = parser.parse_args(args_list)
            return int(args.func(args) or 0)
        args = _window_parser().parse_args(args_list)
        from resnet_gui.qt.app import run_app

        return int(run_app(args.arch, screenshot=args.screenshot) or 0)
    except UserError as error:
        print(f"resnet-gui: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # The reader went away (``resnet-gui summary ... | head``): not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("resnet-gui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
