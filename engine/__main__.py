"""`python -m engine ...` is the `inbetween` command (used to start the server as a child process)."""

import sys

from .cli import main

sys.exit(main())
