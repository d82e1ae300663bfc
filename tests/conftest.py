import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# AppTest runs the app's script inside the test process: its runs train there too (the `thread` runner). The
# `local` runner's worker processes have their own tests (test_runners.py), and the browser tests' real servers
# use them (tests/e2e/conftest.py sets TL_RUNNER=local).
os.environ.setdefault("TL_RUNNER", "thread")
if not os.environ.get("TL_ACTIVATION_CACHE_DIR"):  # the tests' frozen activations never reach the user's data folder
    os.environ["TL_ACTIVATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="tl_activation_cache_")
    atexit.register(shutil.rmtree, os.environ["TL_ACTIVATION_CACHE_DIR"], True)


@pytest.fixture
def store(tmp_path):
    from tl_core.runs.store import RunStore

    return RunStore(tmp_path / "runs.sqlite")
