"""``python -m ntpt_dist``: the ``ntpt-dist`` command."""

import sys

from ntpt_dist.cli import main

if __name__ == "__main__":
    sys.exit(main())
