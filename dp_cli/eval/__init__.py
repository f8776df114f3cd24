"""`dp eval`: retrieval metrics (Rank-k, mAP, mINP), edit quality and caption quality."""
