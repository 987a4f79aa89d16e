"""``python -m pyengine``: the command line (same as the ``pyengine`` entry point)."""
import sys

from .cli import main

sys.exit(main())
