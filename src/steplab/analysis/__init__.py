"""Pure functions over traces; nothing here trains (DESIGN.md, "Layers": ``analysis/``).

* time to result: :mod:`.scoring` (trials -> per-workload times), :mod:`.profiles` (performance
  profiles, the benchmark score), :mod:`.comparisons` (variant agreement, ratios to a reference);
* schedules from a run: :mod:`.refine` (Defazio et al. 2023 refinement);
* the convex last-iterate bound: :mod:`.bound`, and :mod:`.horizons` (LR transfer, cooldowns);
* loss-curve laws: :mod:`.laws` (the laws), :mod:`.law_curves`, :mod:`.law_fit`,
  :mod:`.law_inputs`, and :mod:`.predict` (laws fitted on stored runs);
* :mod:`.sensitivity` - the LR-sensitivity formula and the sweeps read back (the sweep that
  trains is :mod:`steplab.studies.sensitivity`).
"""
