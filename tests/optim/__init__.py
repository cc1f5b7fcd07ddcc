"""Tests of edgefw.optim: optimizers, schedulers, clipping."""
