#!/bin/bash
# How these runs were made: ./run.sh {off|l0|l1} SEED (one train.py run each, 24k steps), then
#   python -m equigym.evaluate off_s0 off_s1 l0_s0 l0_s1 l1_s0 l1_s1 --episodes 32 \
#       --modes deterministic --perception {none|0|1} [--no-baselines] --out ev_{none|l0|l1}
extra=""
[ "$1" = l0 ] && extra="--perception 0"
[ "$1" = l1 ] && extra="--perception 1"
MUJOCO_GL=egl python -m equigym.train --env equigym/Sliding-v0 --policy hepi --total-timesteps 24000 \
  --seed $2 --n-envs 8 --n-steps 100 --batch-size 200 --n-epochs 5 --ent-coef 0.0 --eval-freq 4000 \
  --eval-envs 8 --eval-episodes 8 --no-progress-bar --run-dir $1_s$2 $extra
