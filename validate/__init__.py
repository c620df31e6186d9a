"""Real training with torch: models that change shape mid-run without losing what they learned.

Read in this order: ``models/`` (the networks and their function-preserving shape changes),
``reshape.py`` (moving optimizer state with a changed parameter), ``data.py``, ``flops.py``,
``tasks.py`` (what a task's axes mean), ``config.py`` (how a run trains), ``train.py`` (the
loop).
"""
