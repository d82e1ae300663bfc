"""`python -m tl_core.cli` does what `python -m tl_core` does."""

import sys

from tl_core.cli import main

sys.exit(main())
