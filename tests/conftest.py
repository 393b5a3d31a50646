import pytest

from nbllm.testing import TestingShell


@pytest.fixture(scope="session")
def ip():
    """A real IPython shell with nbllm loaded; run_cell re-raises what a cell raised."""
    return TestingShell.with_nbllm()


@pytest.fixture
def collections():
    """Names of the RAG collections a test makes; each is dropped after it."""
    from nbllm import rag
    from nbllm.retrieval import store

    made = []
    yield made
    for name in made:
        if store.exists(name):
            rag.drop(name)
