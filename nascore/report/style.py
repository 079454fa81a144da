"""The book's colour code for the model families, shared by the report's figures and the chapters.

Manual models blue, NAS models orange, mitigations green (matplotlib's ``tab:`` colours), with
the families in the legend order :data:`FAMILY_ORDER`. :mod:`nascore.findings.common` builds the
chapters' figure helpers on these; the report layer imports nothing from the chapters.
"""
from __future__ import annotations

#: Colour of each model family.
GROUP_COLOURS = {"nas": "tab:orange", "manual": "tab:blue", "mitigation": "tab:green"}
#: Legend order of the families, everywhere.
FAMILY_ORDER = ("manual", "nas", "mitigation")
