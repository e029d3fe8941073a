"""From notebooks to committed outputs: execute one notebook (``run_notebook``), regenerate all of
them and publish by renames (``regenerate``), compare with the committed results (``reproduce``),
the README's generated tables (``readme``) and the reading site (``site``, ``sitecheck``)."""
