import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# AppTest runs the app's script inside the test process: its runs train there too (the `thread` runner). The
# `local` runner's worker processes have their own tests (test_runners.py), and the browser tests' real servers
# use them (tests/e2e/conftest.py sets TL_RUNNER=local).
os.environ.setdefault("TL_RUNNER", "thread")


@pytest.fixture
def store(tmp_path):
    from tl_core.runs.store import RunStore

    return RunStore(tmp_path / "runs.sqlite")
