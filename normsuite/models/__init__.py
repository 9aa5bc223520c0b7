"""Backbones with the chosen norm injected, and the LightningModule factory.

- :mod:`normsuite.models.cnn`: torchvision ResNets (``norm_layer`` threaded), ConvNet1d/2d,
  the article's BNNet / LBNNet / GroupLBNNet with channel LayerNorm.
- :mod:`normsuite.models.rnn`: LSTM/GRU; LayerNormLSTM / LayerNormGRU (Ba et al. 2016).
- :mod:`normsuite.models.factory`: :func:`build_module` and :class:`NormClassifier`.

Submodules are not imported here, so ``import normsuite.models`` stays cheap.
"""
