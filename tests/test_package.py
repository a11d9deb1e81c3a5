"""Process-wide settings that must be in place before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys


def run_python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, check=True).stdout.strip()


def test_openmp_threads_sleep_whichever_part_of_the_app_loads_first():
    # The spec layer imports no torch, yet whatever imports torch after it must see the policy.
    assert run_python("import os, resnet_gui.arch; print(os.environ['OMP_WAIT_POLICY'])") \
        == "PASSIVE"


def test_a_users_openmp_policy_wins():
    assert run_python("import os, resnet_gui; print(os.environ['OMP_WAIT_POLICY'])",
                      OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
