"""The names code outside ui/ and app_pages/ imports from `ui.state` (tests/test_rank_view.py): the process-wide
run store and job manager. The pages and ui/ import each name from the module that does its job (listed in
ui/__init__.py).
"""

from ui.services import _manager, data_root, manager, sessions, store  # noqa: F401
