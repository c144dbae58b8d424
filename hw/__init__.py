"""mxsf.hw"""
