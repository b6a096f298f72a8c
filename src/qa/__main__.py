"""`python -m qa`: the command line, as the `qa` script runs it (`qa.cli.main`)."""

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main())
