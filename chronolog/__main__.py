"""``python -m chronolog``.

``python -m`` puts the working directory first on ``sys.path``, where job modules live:
an ``email.py`` there would shadow the standard library's in every role. Only workers
import job code, so every other role drops that entry before importing anything else.
"""

import os
import sys

_JOB_CODE_ROLES = frozenset({"worker"})

if sys.argv[1:2] and sys.argv[1] not in _JOB_CODE_ROLES and sys.path[:1] in ([""], [os.getcwd()]):
    del sys.path[0]

from chronolog.cli import main  # noqa: E402 - after the sys.path fix, on purpose

main()
