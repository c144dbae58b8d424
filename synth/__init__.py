"""mxsf.synth"""
