"""`python -m engine.server [--port N] ...` is `inbetween serve`."""

import sys

from .cli import main

sys.exit(main())
