"""The neural parts of dp: fusion module, encoders, attention capture, losses, the DP model, tiny configs.

Submodules import torch/diffusers/transformers; import them directly (`from dp_models.fusion import ...`)
so that importing this package stays cheap.
"""
