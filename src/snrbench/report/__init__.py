"""Scoring (:mod:`.scoring`), the leaderboard (:mod:`.leaderboard`) and ground-truth figures
(:mod:`.figures`): pure functions of ``results/``."""
