"""nascore: the security price of efficiency-driven neural-network design.

Subpackages and modules, in data-flow order (see ``../shared/GUIDE.md``):
``data`` → ``models`` → ``train`` / ``zoo`` → ``attacks`` / ``analysis`` → ``report``.
"""
__version__ = "0.1.0"
