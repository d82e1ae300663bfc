import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def store(tmp_path):
    from tl_core.runs.store import RunStore

    return RunStore(tmp_path / "runs.sqlite")
