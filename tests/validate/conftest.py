"""One torch thread: tiny models run fastest that way on a shared 2-core machine, and the
in-process runs must add up exactly like the subprocess runs they are compared with."""

import torch

torch.set_num_threads(1)
