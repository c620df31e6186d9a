"""Shape operators: change one axis of someone else's model while it trains.

An operator is bound to a model when it is made and changes one axis of its shape at a switch:

- ``VitPatch``: patch size of a timm ``VisionTransformer``. FlexiViT: the patch embedding and
  the position grid are computed from stored base ones (PI-resize or merge). Preserved: logits
  on nearest-upsampled images (PI), tokens merged exactly (merge); parameters and optimizer
  state are untouched.
- ``MlpWidth``: hidden width of pairs of ``nn.Linear`` (timm's ``Mlp``, any such MLP).
  Net2WiderNet with a fan-out divisor. Preserved: the function, and AdamW's next step (the
  state is split with the units).
- ``Gpt2Context``: context length of a Hugging Face ``GPT2LMHeadModel``. Position rows added
  (zero Adam state) or dropped. Preserved: the per-position loss on the shared prefix.
- ``Depth``: number of transformer blocks (project ViT and byte LM, timm, GPT-2, Llama-style).
  Copies of trained blocks, with zeroed output projections (preserved: the logits) or
  stacked (G_stack; not preserved). New Adam moments are zero or the source's copies.
- ``BatchSize``: the loop's batch size. Learning rate times B'/B or sqrt(B'/B).

``apply(optimizer, old, new)`` changes the model and moves the optimizer's state with any
parameter it replaces (``validate.reshape.swap_parameter``): the optimizer object stays the
same, so a framework that holds it (Lightning, the Hugging Face Trainer) needs no new one.
``lr_factor(old, new)`` is what the change does to the learning rate. The controller
(``validate.controller``) calls both; none of these modules imports timm, transformers or
lightning: they work on the model objects they are given.
"""

from validate.operators.base import Operator
from validate.operators.batch import BatchSize
from validate.operators.context import Gpt2Context
from validate.operators.depth import Depth
from validate.operators.mlp_width import MlpWidth
from validate.operators.vit_patch import VitPatch

__all__ = ["BatchSize", "Depth", "Gpt2Context", "MlpWidth", "Operator", "VitPatch"]
