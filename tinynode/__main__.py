"""``python -m tinynode ...`` is the ``tinynode`` command."""

import sys

from .cli import main

sys.exit(main())
