#!/usr/bin/python3
"""PyTorch training steps of a small MLP on seeded synthetic data.

Usage: train.py STEPS [BATCH] [WIDTH] [--gpu-steps N]. Uses the GPU when the sandbox has
one (CUDA), else the CPU with one intra-op thread per CPU. On a GPU, ``--gpu-steps N``
replaces STEPS: a GPU runs these steps hundreds of times faster, and a measurement needs
about 2 s of the program's own timer. A few warm-up steps are not timed; `import torch`
(about 12 s under emulation) is not timed either. Prints device=, steps=,
steps_per_s= and samples_per_s=.
"""

import os
import sys
import time

import torch

args = sys.argv[1:]
gpu_steps = None
if "--gpu-steps" in args:
    i = args.index("--gpu-steps")
    gpu_steps = int(args[i + 1])
    del args[i:i + 2]
steps = int(args[0])
batch = int(args[1]) if len(args) > 1 else 64
width = int(args[2]) if len(args) > 2 else 64
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
if dev.type == "cuda" and gpu_steps:
    steps = gpu_steps
if dev.type == "cpu":
    torch.set_num_threads(os.cpu_count() or 1)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(64, width), torch.nn.ReLU(),
    torch.nn.Linear(width, width), torch.nn.ReLU(),
    torch.nn.Linear(width, 10),
).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.randn(batch * 8, 64, generator=torch.Generator().manual_seed(1)).to(dev)
y = torch.randint(0, 10, (batch * 8,), generator=torch.Generator().manual_seed(2)).to(dev)


def step(i: int) -> float:
    lo = (i % 8) * batch
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x[lo:lo + batch]), y[lo:lo + batch])
    loss.backward()
    opt.step()
    return loss


for i in range(5):  # warm-up: allocator, kernels, autograd graph
    step(i)
if dev.type == "cuda":
    torch.cuda.synchronize()
t0 = time.perf_counter()
for i in range(steps):
    loss = step(i)
if dev.type == "cuda":
    torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(f"device={dev.type} threads={torch.get_num_threads()} torch={torch.__version__}")
print(f"steps={steps} batch={batch} width={width}")
print(f"final_loss={float(loss):.4f}")
print(f"train_s={dt:.4f}")
print(f"steps_per_s={steps / dt:.4f}")
print(f"samples_per_s={steps * batch / dt:.2f}")
