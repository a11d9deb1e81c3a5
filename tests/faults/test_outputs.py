"""Class 1 of the fault campaign: output paths never destroy what is not ours (devices, pipes,
sockets, links, one file named twice, foreign files, unfinished runs)."""

from __future__ import annotations

import os

import pytest

from tests.faults import cases_outputs as cases
from tests.faults.harness import shared_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return shared_workspace(tmp_path_factory)


@pytest.mark.parametrize("option", ["export", "log", "checkpoint", "resume"])
@pytest.mark.parametrize("kind", ["device", "fifo", "socket"])
def test_a_device_pipe_or_socket_is_refused_and_left_as_it_was(ws, kind, option):
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    outcome = cases.special_output(ws, kind, option)
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("option", ["export", "checkpoint"])
def test_a_symbolic_link_is_written_through_and_stays_a_link(ws, option):
    outcome = cases.symlink_output(ws, option)
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("variant", ["equal", "symlink", "hardlink", "prev"])
def test_log_and_checkpoint_naming_one_file_are_refused(ws, variant):
    outcome = cases.same_file_outputs(ws, variant)
    assert outcome.clean, outcome.report()


@pytest.mark.parametrize("option, variant", [("log", "zip"), ("log", "json"),
                                             ("checkpoint", "text")])
def test_a_file_that_is_not_resnet_guis_is_never_replaced(ws, option, variant):
    outcome = cases.foreign_file(ws, option, variant)
    assert outcome.clean, outcome.report()


def test_a_log_with_a_second_name_is_refused(ws):
    outcome = cases.hard_linked_log(ws)
    assert outcome.clean, outcome.report()


def test_an_unfinished_run_is_kept_unless_overwrite_says_otherwise(ws):
    outcome = cases.unfinished_checkpoint(ws)
    assert outcome.clean, outcome.report()


def test_an_export_never_replaces_its_input_and_dev_stdout_is_standard_output(ws):
    for outcome in (cases.export_onto_input(ws, "py"), cases.export_to_dev_stdout(ws, "json")):
        assert outcome.clean, outcome.report()
