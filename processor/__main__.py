"""`python -m processor` is the `sla-processor` command."""

import sys

from processor.cli import main

sys.exit(main())
