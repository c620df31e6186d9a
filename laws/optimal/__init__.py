"""Compute-optimal analysis of fitted laws: the optimal model size and data for a budget
(``allocate``), the IsoFLOP-parabola method on sweep data (``isoflop``) and the loss a shape
reaches at a compute, with bootstrap intervals (``predict``). Commands in
``shapeshift.commands.optimal``; method and measured figures in docs/OPTIMAL.md.
"""
