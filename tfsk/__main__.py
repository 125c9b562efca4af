import sys

from tfsk.cli import main

sys.exit(main())
