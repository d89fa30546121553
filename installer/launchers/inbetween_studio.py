"""Entry of the bundled desktop app (`inbetween-studio`)."""

import sys

from desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
