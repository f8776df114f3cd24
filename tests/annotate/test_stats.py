from dp_cli.annotate.stats import Stats, estimate_cost


def test_cost_for_known_models_and_batch_discount():
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == 0.75
    assert estimate_cost("gpt-4o-2024-08-06", 1_000_000, 0) == 2.5  # dated snapshot of gpt-4o
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000, batch=True) == 0.375
    assert estimate_cost("Qwen/Qwen2.5-7B-Instruct", 10, 10) is None


def test_status_line_counts():
    s = Stats(done=3, failed=1, in_flight=2)
    assert s.status_line().startswith("done 3 · failed 1 · in flight 2")
