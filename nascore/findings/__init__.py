"""One module per book chapter: the computations behind a finding, returning tidy tables.

Notebooks narrate and call these; no algorithm lives in a notebook (GUIDE.md).
"""
