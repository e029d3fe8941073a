"""The paper's theory made computable: one-layer population flow and its optima (``dynamics``,
``optima``), two-layer gradient flow and gates (``two_layer_dynamics``, ``driving``), global
modulation's closed form (``global_modulation``), and the token task's priorities (``priority``,
``token_theory``). Uses the engine; never the notebooks or the pipeline."""
