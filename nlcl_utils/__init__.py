"""nlcl_utils: shared library of the companion notebooks to Tian (ICLR 2023),
*Understanding the Role of Nonlinearity in Training Dynamics of Contrastive Learning*.

Modules (one job each): ``alpha_cl`` (losses, alpha, C_alpha), ``activations`` (h and h'),
``data`` (generators), ``models``, ``train``, ``metrics``, ``dynamics`` (population flows),
``params`` (notebook parameter validation), ``claims`` (claim checks -> claims.json),
``plotting`` (theme + deterministic savefig), ``regenerate`` (papermill batch runner).
"""

__version__ = "0.1.0"
