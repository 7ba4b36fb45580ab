#!/bin/bash
# How these runs were made: ./run.sh {with|without} SEED. The forecaster (metrics in
# forecaster_metrics.json) is python -m equigym.modules.forecast.train --env equigym/RopeClosing-v0
# --episodes 60 --channels 16 --hidden 64 --layers 2 --k 8 --epochs 5 --out fc/rope_closing
# (seed 0's runs used an earlier training of the same config: ADE equal to 1e-8 m).
extra=""
[ "$1" = with ] && extra="--forecast fc/rope_closing"
MUJOCO_GL=egl python -m equigym.train --env equigym/RopeClosing-v0 --policy hepi $extra \
  --total-timesteps 24000 --seed $2 --eval-freq 4800 --eval-envs 8 --eval-episodes 10 \
  --checkpoint-freq 0 --no-progress-bar --run-dir $1_fc_s$2
