"""Networks whose shape can change during training: ViT patch size, MLP width, LM context."""
