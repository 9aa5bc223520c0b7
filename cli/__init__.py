"""The ``normsuite`` command line (installed as ``normsuite.cli``).

Each command lives in its own module and keeps heavy imports (torch, lightning)
inside the command body, so ``normsuite --help`` and the analyzer commands start fast.
"""
