"""`python -m ivr` is `ivr-survey`."""

import sys

from ivr.admin.cli import main

sys.exit(main())
