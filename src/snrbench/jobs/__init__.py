"""Jobs over a family's grid of cells: ground-truth generation (:mod:`.groundtruth`, resumable,
stored atomically) and the Monte Carlo ladder check of exact cells (:mod:`.ladder`)."""
