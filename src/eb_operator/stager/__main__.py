import sys

from eb_operator.stager.cli import main

sys.exit(main(sys.argv[1:]))
