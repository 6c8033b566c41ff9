"""Compiled core of ssgs: Cython modules over the C kernels in c/.

Use it through :mod:`ssgs.kernels`, which validates arguments first.
"""
