"""The neural parts of dp: fusion module, encoders, attention capture, losses, the DP model, tiny configs.

Submodules import torch/diffusers/transformers; import them directly (`from dp_models.fusion import ...`)
so that importing this package stays cheap.

Of dp_cli it uses only the small shared core: `dp_cli.errors` (the error family), `dp_cli.fsutil` (atomic
writes), `dp_cli.data.attributes` (the attribute vocabulary and caption helpers) and `dp_cli.data.images` (the
image toolkit), none of which imports anything else of dp; so dp_cli may import dp_models without a loop
(tests/test_import_graph.py).
"""
