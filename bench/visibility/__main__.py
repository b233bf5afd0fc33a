"""``python -m bench.visibility --rows 1000000``: see ``bench/visibility/run.py``."""

from __future__ import annotations

import sys

from bench.visibility.run import main

sys.exit(main())
