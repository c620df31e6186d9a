"""Policy-comparison reports: ``compare`` runs the search and the simulator and writes a folder
with ``report.md``, ``report.html``, figures, ``summary.json`` and ``runs.csv``.

matplotlib is imported only when figures are drawn.
"""

from sim.report.compare import DEFAULT_POLICIES, compare, draw_figures

__all__ = ["DEFAULT_POLICIES", "compare", "draw_figures"]
