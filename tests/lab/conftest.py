"""pytest fixtures of the end-to-end tests: `lab` is a DSTM domain of network
namespaces (scripts/lab, DESIGN §8) brought up once per test module under a
name of its own and always taken down at the end. A test that needs other
options calls lab.up(...) again: `up` replaces the running lab."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab import Lab  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the lab needs root (network namespaces)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
