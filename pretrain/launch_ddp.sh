#!/usr/bin/env bash
# Data-parallel pretraining with torchrun (PyTorch's own launcher).
#
#   one node, all its GPUs:
#     pretrain/launch_ddp.sh configs/family_paper.yaml --run-dir runs/paper
#   several nodes (run the same command on every node, NODE_RANK = 0, 1, ...):
#     NNODES=2 NODE_RANK=0 MASTER_ADDR=node0.example MASTER_PORT=29500 \
#       pretrain/launch_ddp.sh configs/family_paper.yaml --run-dir /shared/runs/paper
#
# The run directory must be on a file system every node sees (rank 0 writes it,
# every rank resumes from it). train.batch_size is the global batch.
set -euo pipefail
NPROC_PER_NODE="${NPROC_PER_NODE:-$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')}"
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec torchrun \
  --nnodes="${NNODES}" --node_rank="${NODE_RANK}" --nproc_per_node="${NPROC_PER_NODE}" \
  --master_addr="${MASTER_ADDR}" --master_port="${MASTER_PORT}" \
  "${HERE}/train.py" "$@"
