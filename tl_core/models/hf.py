"""The classes of Hugging Face transformers the engine uses, resolved under one lock.

transformers is a lazy module: a name is imported on its first access, and two threads resolving names at once (a
server's warm-up thread and a run, two runs in one process) can see "cannot import name 'AutoConfig' from
'transformers'". Every access of the engine goes through `names`, which resolves under a lock; once resolved, a
name is a plain attribute of the module.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_LOCK = threading.RLock()


def names(*wanted: str) -> tuple[Any, ...]:
    """`names("AutoConfig", "AutoModel")` -> (transformers.AutoConfig, transformers.AutoModel)."""
    with _LOCK:
        module = importlib.import_module("transformers")
        return tuple(getattr(module, name) for name in wanted)


def masking_utils():
    """transformers.masking_utils (the attention masks the text layers' loops build)."""
    with _LOCK:
        return importlib.import_module("transformers.masking_utils")
