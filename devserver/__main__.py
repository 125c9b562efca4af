"""``python -m tfsk.devserver FLAGS``: the same as ``tfsk serve FLAGS`` (an entry point, on top like the CLI)."""

import sys

from tfsk.cli.serve import main

sys.exit(main())
