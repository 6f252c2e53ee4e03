"""ssjax benchmark suite: ``python -m benchmarks.run`` (see :mod:`benchmarks.run`).

Modules: :mod:`benchmarks.bptt` (BPTT step on an SHD-like workload: ssjax, plain JAX, matrix
product bound), :mod:`benchmarks.peers` (the same step in spyx, snnTorch and Norse, all
optional), :mod:`benchmarks.superspike` (online SuperSpike blocks, memory, seed scaling),
:mod:`benchmarks.timing` (compile, best-of-N, XLA memory). Nothing here is imported by ssjax,
and the peers' libraries are never needed by the package or its tests.
"""
