"""``python -m robustest.cli``: the same as the ``robustest`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
