import os
import signal
import sys

import memwork

mode = sys.argv[1]
memwork.retain(4 << 20)
if mode == "raise":
    memwork.fails()
elif mode == "sigkill":
    print("about to be killed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "exit3":
    sys.exit(3)
