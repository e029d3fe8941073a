"""nlcl_utils: shared library of the companion notebooks to Tian (ICLR 2023),
*Understanding the Role of Nonlinearity in Training Dynamics of Contrastive Learning*.

Modules (one job each; the README has a table): ``alpha_cl`` (losses, alpha, C_alpha),
``activations`` (h and h'), ``data`` (token and mixture generators), ``models``, ``train``,
``metrics`` (chi+/chi-), ``dynamics`` and ``optima`` (one-layer population flow),
``two_layer_dynamics``, ``global_modulation``, ``priority``, ``params`` (notebook parameter
validation), ``claims`` (claim checks -> claims.json), ``plotting`` (theme + deterministic
savefig), ``progress`` (progress bars), ``regenerate`` (papermill batch runner), ``cli``.
"""

__version__ = "0.1.0"
