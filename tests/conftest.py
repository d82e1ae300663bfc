import atexit
import os
import shutil
import sys
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


@pytest.fixture(autouse=True)
def _own_main_module():
    """Each test starts with the interpreter's own `__main__`. Streamlit's script runner (AppTest) installs the script
    it ran as `__main__` and leaves it there, and a process that a later test spawns would run that script again."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
