"""mxsf.studies: applications of the golden model (not the SPEC model itself).

:mod:`mxsf.studies.accuracy` measures what each element format costs in accuracy
(SQNR on named tensor distributions, 1D blocks against 2D tiles);
:mod:`mxsf.studies.train` trains a small MLP on scikit-learn's digits with every
matmul in an MX format (the training demo). NumPy and :mod:`mxsf.golden` only.
"""
