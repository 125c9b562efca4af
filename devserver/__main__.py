import sys

from tfsk.devserver.cli import main

sys.exit(main())
