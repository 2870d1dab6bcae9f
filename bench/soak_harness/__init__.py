"""The soak harness behind `bench/soak.py`: the product started as the Procfile says, a mixed
workload, faults at random times from the seed, and the invariants checked at the end.

Each workload action is a module of `workload/`, each fault a function of `faults.py`, each
invariant a function of `invariants.py`.
"""
