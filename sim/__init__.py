"""mxsf.sim"""
