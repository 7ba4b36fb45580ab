"""Equivariant motion forecasting of graph nodes (EqMotion-style), its data and its metrics.

Train one with ``python -m equigym.modules.forecast.train --env equigym/RopeShaping-v0``.
"""

from equigym.modules.forecast.model import EqMotionForecaster, constant_velocity, load_forecaster

__all__ = ["EqMotionForecaster", "constant_velocity", "load_forecaster"]
