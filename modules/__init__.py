"""Modules that run inside the RL loop: motion forecasting (:mod:`equigym.modules.forecast`)."""
