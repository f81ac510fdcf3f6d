"""``python -m training.serving --model PATH --port N``: the same as ``o2v serve``."""

from __future__ import annotations

import sys

from training.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())
