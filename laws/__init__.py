"""Scaling laws: their forms, fitting, files, presets, the shape graph and its search.

Pure numpy/scipy/networkx: nothing here imports torch or simpy.
"""
