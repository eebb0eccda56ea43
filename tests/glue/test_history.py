"""The training history: entries, the best one by RecBole's rule, the stop reason, and the
"may be undertrained" flag."""
import pytest

from recbole_croloss.glue.history import TrainingHistory, undertrained


def history_of(scores, bigger=True):
    history = TrainingHistory(bigger)
    for i, score in enumerate(scores):
        history.add_losses(10.0 * (i + 1), 5)
        history.add_validation(i, 5 * (i + 1), i + 1, score, {"recall@50": score}, 1.5 * i)
    return history


def test_entries_hold_the_mean_loss_since_the_last_validation():
    history = TrainingHistory()
    history.add_losses(6.0, 2)
    history.add_losses(3.0, 1)
    entry = history.add_validation(1, 3, 1.5, 0.25, {"recall@50": 0.25}, 2.0)
    assert entry["train_loss"] == 3.0 and entry["epochs_done"] == 1.5
    assert history.add_validation(2, 3, 1.5, 0.3, {}, 3.0)["train_loss"] is None


@pytest.mark.parametrize("bigger, best_epoch", [(True, 2), (False, 0)])
def test_the_best_entry_follows_early_stopping_s_rule(bigger, best_epoch):
    # of equal scores the later one is the best, as RecBole's early_stopping updates on ties
    summary = history_of([0.1, 0.3, 0.3, 0.2], bigger).summary("max_epochs", 4, 20)
    assert summary["best_epoch"] == best_epoch and summary["best_step"] == 5 * (best_epoch + 1)


def test_a_resumed_history_continues_its_clock_and_its_loss_sums():
    history = history_of([0.1, 0.2])
    history.add_losses(4.0, 2)
    restored = TrainingHistory()
    restored.restore(history.state(wall_s=10.0))
    entry = restored.add_validation(2, 15, 3, 0.3, {}, wall_s=1.0)
    assert entry["wall_s"] == 11.0 and entry["train_loss"] == 2.0 and len(restored.entries) == 3


def test_an_unknown_stop_reason_is_refused():
    with pytest.raises(ValueError, match="stopped='done'"):
        TrainingHistory().summary("done", 1, 1)


@pytest.mark.parametrize("scores, stopped, patience, flagged", [
    ([0.1, 0.2, 0.3, 0.4], "max_epochs", 3, True),     # still improving at the budget
    ([0.4, 0.3, 0.2, 0.1], "max_epochs", 3, False),    # best 3 validations before the end
    ([0.4, 0.3, 0.2, 0.1], "max_epochs", 4, True),     # ... within the last 4
    ([0.1, 0.4, 0.3, 0.2], "max_steps", 2, False),
    ([0.1, 0.2, 0.4, 0.3], "max_steps", 2, True),
    ([0.1, 0.4, 0.3, 0.2], "early_stop", 10, False),   # early stopping decided: converged
    ([], "max_epochs", 3, False),                      # no validation at all
])
def test_a_best_validation_near_a_budget_stop_is_flagged(scores, stopped, patience, flagged):
    record = history_of(scores).summary(stopped, len(scores), 5 * len(scores))
    assert undertrained(record, patience) is flagged
