"""``python -m chronolog``.

``python -m`` puts the working directory first on ``sys.path``, where job modules live:
an ``email.py`` there would shadow the standard library's in every role. No Chronolog
process imports job code itself (a worker's job processes put its ``--app-dir`` first on
their own path), so the entry is dropped before anything else is imported.
"""

import os
import sys

if sys.path[:1] in ([""], [os.getcwd()]):
    del sys.path[0]

from chronolog.cli import main  # after the sys.path fix, on purpose

main()
