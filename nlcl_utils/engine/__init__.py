"""The training engine: losses (``alpha_cl``), activations, the networks (``models`` for tokens,
``image_net`` for images), the batched training loop (``train``, ``image_train``) and what is
measured on a trained network (``metrics``, ``image_metrics``). Depends on ``data`` and the shared
modules only."""
