import pytest

from nbllm.testing import TestingShell


@pytest.fixture(scope="session")
def ip():
    """A real IPython shell with nbllm loaded; run_cell re-raises what a cell raised."""
    return TestingShell.with_nbllm()
