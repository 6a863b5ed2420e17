import sys

import edgecases

edgecases.main(sys.argv[1])
