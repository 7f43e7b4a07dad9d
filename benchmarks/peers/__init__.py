"""The peers on the comparison workload, one module per library (see benchmarks/compare.py).

Each module is a worker run as its own process by ``benchmarks.compare``:
``python -m benchmarks.peers.<name> --data DATA.npz --out RESULT.json --config CONFIG``.
None of them imports tinynode: the data and the initial weights come from the
``.npz`` that ``benchmarks.workload.prepare`` writes.
"""
