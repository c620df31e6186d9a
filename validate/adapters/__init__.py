"""Adapters that run a shape policy inside other people's training loops.

``validate.adapters.lightning.ShapeCallback`` for PyTorch Lightning and
``validate.adapters.hf`` (``ShapeTrainerCallback``, ``ShapeTrainer``) for the Hugging Face
Trainer; a plain PyTorch loop uses ``validate.controller.ShapeController`` directly (see
docs/examples/plain_loop.py). Each module imports its framework: install the extras
``shapeshift[lightning]`` or ``shapeshift[hf]``.
"""
