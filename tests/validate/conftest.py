"""One torch thread: tiny models run fastest that way on a shared 2-core machine, and the
in-process runs must add up exactly like the subprocess runs they are compared with."""

import torch

from tests.slurm_cluster import slurm_cluster  # noqa: F401 (the one-node Slurm fixture)

torch.set_num_threads(1)
