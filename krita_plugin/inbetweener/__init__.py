"""Inbetweener for Krita: generate the in-betweens of an animation layer's keyframes.

Krita's plugin manager imports this package (its Python has the `pykrita` module loaded): the
action and the docker are registered then. Imported anywhere else (tests, the zip builder), the
package only offers its modules.
"""

import sys

if "pykrita" in sys.modules:
    from .extension import register

    register()
