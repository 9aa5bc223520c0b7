"""Static analysis of model files: reads them with ``ast``, never imports or runs them.

Pure Python: nothing under ``normsuite.analysis`` may import torch or lightning.
"""
