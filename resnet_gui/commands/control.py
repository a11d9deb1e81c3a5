"""``train --control``: pause, resume and stop a run from the program that started it, through
standard input, one word a line. The window runs several-process trainings as a subprocess
(``train --nproc N --control``) and steers them this way on every platform.

Only rank 0 reads (the processes torchrun starts share its standard input); the trainer's
agreement at each step passes a pause or a stop on to the other processes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from resnet_gui.engine.trainer import Trainer

WORDS = ("pause", "resume", "stop")


def follow(stream: TextIO, trainer: Trainer) -> threading.Thread:
    """Apply each word read from ``stream`` to ``trainer`` until the stream ends (a word it
    does not know is passed over); the reading thread, a daemon."""
    actions = {"pause": trainer.pause, "resume": trainer.resume, "stop": trainer.request_stop}

    def read() -> None:
        for line in stream:
            action = actions.get(line.strip().lower())
            if action is not None:
                action()

    thread = threading.Thread(target=read, name="resnet-gui control", daemon=True)
    thread.start()
    return thread
