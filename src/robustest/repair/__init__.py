"""Cutting-plane adversary correction (Zhao & Kronqvist, arXiv 2409.13770): repair a model so that it
classifies given adversarial points correctly while staying close to the original weights.

The public entry point is :func:`robustest.repair` (``robustest.repair.api.repair``); see
``notes/repair-algorithm.md`` for the method and which parts are engineering choices.
"""
