"""Freed memory kept in the process while training: no page faults for the next step's blocks,
and the memory back to the system afterwards."""

from __future__ import annotations

import os
import resource

import pytest
import torch

from resnet_gui.engine.allocator import glibc, keep_freed_memory

pytestmark = pytest.mark.skipif(glibc() is None, reason="mallopt is glibc's")

BLOCK = 8 << 20
PAGES_PER_BLOCK = BLOCK // resource.getpagesize()


def page_faults_of_fresh_blocks(blocks: int = 20) -> int:
    """Page faults while allocating, touching and freeing 8 MiB blocks, as a training step's
    activations are."""
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(blocks):
        torch.empty(BLOCK, dtype=torch.uint8).fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def test_blocks_freed_inside_are_reused_without_page_faults():
    with keep_freed_memory() as kept:
        page_faults_of_fresh_blocks(10)  # the heap grows to hold them: the first steps
        faults = page_faults_of_fresh_blocks()
    assert kept
    # Blocks from the kernel would fault 20 x 2,048 pages of 4 KiB.
    assert faults < PAGES_PER_BLOCK / 2


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc")
def test_memory_freed_inside_stays_until_the_end_then_goes_back():
    large = 256 << 20
    with keep_freed_memory():
        torch.empty(large, dtype=torch.uint8).fill_(1)
        kept = resident_bytes()
    returned = resident_bytes()
    assert kept - returned > large / 2


def test_an_inner_run_ending_leaves_the_outer_run_its_memory():
    with keep_freed_memory():
        with keep_freed_memory():
            pass
        page_faults_of_fresh_blocks(10)
        faults = page_faults_of_fresh_blocks()
    assert faults < PAGES_PER_BLOCK / 2
