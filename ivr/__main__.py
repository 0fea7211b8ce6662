"""`python -m ivr` is `ivr-survey`."""

import sys

from ivr.cli import main

sys.exit(main())
