"""Entry of the bundled `inbetween` executable (the engine's command line and server).

Front ends start the engine as `<python> -m engine serve ...`; in the bundle the executable stands
in for that Python, so a leading `-m engine` is accepted and dropped.
"""

import sys

from engine.cli import main

if __name__ == "__main__":
    if sys.argv[1:3] == ["-m", "engine"]:
        del sys.argv[1:3]
    sys.exit(main())
