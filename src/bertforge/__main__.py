import sys

from bertforge.cli.app import main

sys.exit(main())
