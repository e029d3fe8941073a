"""``python -m nlcl_utils.cli COMMAND ...``: the same as the ``nlcl`` command."""

import sys

from nlcl_utils.cli import main

sys.exit(main())
