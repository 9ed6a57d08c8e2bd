"""Build of the optional compiled DRAM core (hwmodels/dram/_dramcore.c); everything else is in pyproject.toml.

`optional=True`: if no C compiler is available the install still succeeds, and the DRAM model falls back to its
pure-Python path with a warning (hwmodels/dram/compiled.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("hwmodels.dram._dramcore", sources=["hwmodels/dram/_dramcore.c"], optional=True)])
