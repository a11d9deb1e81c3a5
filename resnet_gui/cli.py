"""Command line: ``resnet-gui [ARCH] [--data-dir DIR] [--screenshot FILE]`` opens the window;
subcommands ``presets``, ``summary``, ``export``, ``train``, ``predict``, ``grow`` and ``lab``
work without it.

Every user mistake ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from resnet_gui import __version__
from resnet_gui.commands.console import (
    OutputLostError,
    reserve_standard_streams,
    say,
    stdout_problem,
)
from resnet_gui.commands.stopping import handle_for_process, ignore_while_exiting
from resnet_gui.errors import UsageError, UserError

SUBCOMMANDS = ("presets", "summary", "export", "train", "predict", "grow", "lab")


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
        epilog="Window: resnet-gui [ARCH] [--data-dir DIR] [--screenshot FILE.png]   "
        "ARCH is a preset name (see 'resnet-gui presets'), an architecture JSON file or a "
        "checkpoint (opened with its run and trained weights).",
    )
    parser.add_argument("--version", action="version", version=f"resnet-gui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from resnet_gui.commands import grow as grow_command
    from resnet_gui.commands import lab as lab_command
    from resnet_gui.commands import network as network_commands
    from resnet_gui.commands import predict as predict_command
    from resnet_gui.commands import train as train_command

    network_commands.add_parsers(commands)
    train_command.add_parser(commands)
    predict_command.add_parser(commands)
    grow_command.add_parser(commands)
    lab_command.add_parser(commands)
    return parser


def _window_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="resnet-gui",
        description="Open the resnet-gui window. Subcommands: " + ", ".join(SUBCOMMANDS)
        + " (resnet-gui COMMAND --help).",
    )
    parser.add_argument("arch", nargs="?",
                        help="preset name, architecture JSON file or checkpoint to open")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding the datasets, as File > Data folder sets it (kept for later "
        "launches)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="render the window offscreen at 1600x1000, write a PNG and exit",
    )
    parser.add_argument("--version", action="version", version=f"resnet-gui {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--"] and args_list[1:2] and args_list[1] in SUBCOMMANDS:
        # torchrun ... -m resnet_gui -- train ...: the "--" keeps torchrun's parser off our
        # options, and some Python versions' argparse pass it on.
        del args_list[0]
    reserve_standard_streams()
    subcommand = bool(args_list and args_list[0] in SUBCOMMANDS)
    if subcommand and argv is None:  # this process is the command (not a test calling main)
        handle_for_process()
    try:
        code = _run(args_list)
    except KeyboardInterrupt as error:  # a stop signal just after the command's own handling
        code = getattr(error, "exit_code", 130)
    finally:
        if subcommand and argv is None:
            ignore_while_exiting()
    return code


def _run(args_list: list[str]) -> int:
    try:
        if args_list and args_list[0] in SUBCOMMANDS or args_list[:1] in (["-h"], ["--help"]):
            parser = _subcommand_parser()
            args = parser.parse_args(args_list)
            args.command_line = args_list  # --nproc starts this same command on each process
            return int(args.func(args) or 0)
        args = _window_parser().parse_args(args_list)
        from resnet_gui.qt.app import run_app

        return int(run_app(args.arch, screenshot=args.screenshot, data_dir=args.data_dir) or 0)
    except UserError as error:
        say(f"resnet-gui: error: {error}")
        return error.exit_code
    except BrokenPipeError as error:  # output not written through write_stdout
        say(f"resnet-gui: error: {stdout_problem(error)}")
        return OutputLostError.exit_code
    except KeyboardInterrupt as error:  # a second Ctrl-C (or SIGTERM) says its own exit code
        say(f"resnet-gui: {getattr(error, 'message', 'interrupted')}")
        return getattr(error, "exit_code", 130)


if __name__ == "__main__":
    raise SystemExit(main())
