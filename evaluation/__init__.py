"""Zero-shot evaluation of trained runs: conditions, lock-step episodes, orbits, reports, videos.

The command line is :mod:`equigym.evaluate` (``python -m equigym.evaluate RUN_DIR``); these
modules are its parts: :mod:`~equigym.evaluation.conditions` (training vs held-out conditions of
each env), :mod:`~equigym.evaluation.rollout` (runs loaded without unpickling, batched agents),
:mod:`~equigym.evaluation.orbit` (NERO-style orbit analysis), :mod:`~equigym.evaluation.report`
(tables and plots) and :mod:`~equigym.evaluation.video` (MP4).
"""
