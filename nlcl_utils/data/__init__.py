"""Data generators: ``tokens`` (hierarchical token data, 2-layer) and ``mixture`` (Gaussian
mixture, 1-layer). Both are batched over replicas and seeded per replica."""
