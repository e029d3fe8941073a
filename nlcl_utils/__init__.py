"""nlcl_utils: shared library of the companion notebooks to Tian (ICLR 2023),
*Understanding the Role of Nonlinearity in Training Dynamics of Contrastive Learning*.

Subpackages, lowest layer first (a module imports only from its own layer or lower ones;
``tests/test_architecture.py`` keeps it so):

* shared modules: ``seeds`` (valid seeds, one random stream per replica), ``stats`` (the
  Student t interval), ``publish`` (atomic writes, publishing folders by renames, run locks),
  ``processes`` (worker pools, stopping on signals), ``progress`` (progress bars);
* ``data``: the hierarchical token task, the Gaussian mixture, image data sets;
* ``engine``: losses and alpha (``alpha_cl``), activations, networks, the batched training loop,
  metrics such as chi+;
* ``theory``: the paper's statements made computable (population flow, optima, two-layer
  dynamics, global modulation, priorities);
* ``experiments``: many runs at once (worker processes, cached sweeps, tables with intervals);
* ``notebook``: what a notebook imports besides the science (setup, parameters, claims, plotting);
* ``pipeline``: regenerating and publishing the notebooks, comparing with the committed results,
  the README's tables and the reading site;
* ``cli``: the ``nlcl`` command.
"""

__version__ = "0.1.0"
