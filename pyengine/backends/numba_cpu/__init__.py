"""placeholder while the numba backend is written"""
