"""`python -m training`: the same command as `inbetween-train`."""

from training.cli import main

raise SystemExit(main())
