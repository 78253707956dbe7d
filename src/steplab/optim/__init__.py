"""Optimizers by name from well-kept packages, train/eval modes, Polyak-type steps.

Modules: ``optimizers`` (the registry lookups, kwargs checking, :func:`build_optimizer
<steplab.optim.optimizers.build_optimizer>`), ``catalog`` (the registry's entries),
``groups`` (parameter groups), ``modes`` (train/eval modes, BatchNorm refresh),
``averaged`` (DoG with iterate averaging), ``polyak`` (SPS_max, MoMo, ALR-SMAG); against loss
of plasticity: ``upgd`` (UPGD), ``cbp`` (continual backprop), ``regularized`` (L2 Init,
spectral regularization, shrink and perturb), ``base_update`` (their SGD/Adam bases).
"""
