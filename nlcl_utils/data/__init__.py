"""Data: ``tokens`` (the hierarchical token task of the two-layer results), ``mixture`` (the
Gaussian mixture of the one-layer results) and ``images`` (small real images: the digits that
scikit-learn ships, or a local MNIST). All are batched over replicas and seeded per replica
(:mod:`nlcl_utils.seeds`)."""
